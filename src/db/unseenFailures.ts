/**
 * Final 'failed' attempt rows for deliveries that BullMQ failed without the worker writing one:
 * a job failed for stalling too often (its worker died each time), a fan-out that failed before
 * reaching some endpoints, or a final attempt whose row was lost with a crashed worker's unwritten
 * outcomes. `hookfleet failed list`, recover and the health page read failures from the attempt
 * history (failedDeliveries.ts), so such a row is what makes the delivery listed and replayable.
 */
import type postgres from 'postgres';

export interface UnseenFailure {
  messageId: string;
  endpointId: string;
  attemptNumber: number;
  /** When BullMQ failed the job, in ms since the epoch. */
  failedAtMs: number;
  error: string;
  /** Write it only if the delivery has no attempt at all (a fan-out that never reached it). */
  onlyIfUnattempted: boolean;
}

/**
 * Inserts a final 'failed' attempt for each delivery unless it already ends in one, or has an
 * attempt after the job failed (replayed since), or its message is gone (pruned). Idempotent:
 * running it twice for the same failures writes each once. Returns how many rows were written.
 */
export async function recordUnseenFailures(
  sql: postgres.Sql,
  failures: readonly UnseenFailure[],
): Promise<number> {
  if (failures.length === 0) return 0;
  const rows = failures.map((failure) => ({
    message_id: failure.messageId,
    endpoint_id: failure.endpointId,
    attempt_number: Math.min(Math.max(1, failure.attemptNumber), 32_767),
    failed_at: new Date(failure.failedAtMs).toISOString(),
    error: failure.error,
    only_if_unattempted: failure.onlyIfUnattempted,
  }));
  const written = await sql<{ n: number }[]>`
    with written as (
      insert into attempts (message_id, endpoint_id, attempt_number, attempted_at, outcome,
                            status_code, duration_ms, error)
      select f.message_id, f.endpoint_id, f.attempt_number, f.failed_at, 'failed', null, 0, f.error
      from json_to_recordset(${JSON.stringify(rows)}::json)
        as f(message_id text, endpoint_id text, attempt_number smallint, failed_at timestamptz,
             error text, only_if_unattempted boolean)
      where exists (select 1 from messages m where m.id = f.message_id)
        and not exists (
          select 1 from attempts a
          where a.message_id = f.message_id and a.endpoint_id = f.endpoint_id
            and (f.only_if_unattempted
                 or a.attempted_at > f.failed_at
                 or (a.outcome = 'failed' and not exists (
                       select 1 from attempts later
                       where later.message_id = a.message_id and later.endpoint_id = a.endpoint_id
                         and (later.attempted_at, later.id) > (a.attempted_at, a.id)))))
      returning 1
    )
    select count(*)::int as n from written`;
  return written[0]?.n ?? 0;
}

/** The endpoints of a message with no attempt recorded, for each message id given. */
export async function unattemptedEndpoints(
  sql: postgres.Sql,
  messageIds: readonly string[],
): Promise<Map<string, string[]>> {
  if (messageIds.length === 0) return new Map();
  const rows = await sql<{ message_id: string; endpoint_id: string }[]>`
    select m.id as message_id, e.endpoint_id
    from messages m, unnest(m.endpoint_ids) as e(endpoint_id)
    where m.id in ${sql(messageIds as string[])}
      and not exists (select 1 from attempts a
                      where a.message_id = m.id and a.endpoint_id = e.endpoint_id)`;
  const byMessage = new Map<string, string[]>();
  for (const row of rows) {
    const list = byMessage.get(row.message_id) ?? [];
    list.push(row.endpoint_id);
    byMessage.set(row.message_id, list);
  }
  return byMessage;
}
