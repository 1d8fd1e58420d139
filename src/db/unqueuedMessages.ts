/**
 * The reconciler's queries (worker/unqueuedMessages.ts): messages stored but never queued, and
 * messages queued whose job may have vanished from Redis.
 */
import type postgres from 'postgres';

export interface UnqueuedMessage {
  id: string;
  /** When it was accepted, in ms since the epoch. */
  createdAtMs: number;
  /** Whether it has an endpoint to fan out to. */
  hasEndpoints: boolean;
  /** Whether any attempt was recorded for it: then its job did reach Redis. */
  attempted: boolean;
}

/**
 * Messages with no `enqueued_at` accepted between `windowSeconds` and `graceSeconds` ago, oldest
 * first, at most `limit`: a range scan of messages_not_enqueued_idx, which holds only such rows.
 * The grace leaves alone sends still being written (a batch waits 10 s at most).
 */
export async function findUnqueuedMessages(
  sql: postgres.Sql,
  options: { graceSeconds: number; windowSeconds: number; limit: number },
): Promise<UnqueuedMessage[]> {
  const rows = await sql<
    { id: string; created_ms: number; has_endpoints: boolean; attempted: boolean }[]
  >`
    select m.id, (extract(epoch from m.created_at) * 1000)::float8 as created_ms, cardinality(m.endpoint_ids) > 0 as has_endpoints,
           exists (select 1 from attempts a where a.message_id = m.id) as attempted
    from messages m
    where m.enqueued_at is null
      and m.created_at < now() - make_interval(secs => ${options.graceSeconds})
      and m.created_at > now() - make_interval(secs => ${options.windowSeconds})
    order by m.created_at
    limit ${options.limit}::int`;
  return rows.map((row) => ({
    id: row.id,
    createdAtMs: row.created_ms,
    hasEndpoints: row.has_endpoints,
    attempted: row.attempted,
  }));
}

/** Where the scan of queued messages stopped: created_at as PostgreSQL prints it, and the id. */
export interface MessageCursor {
  createdAt: string;
  id: string;
}

export interface UnattemptedPage {
  /** Queued messages with endpoints but no attempt recorded yet, with their endpoints. */
  messages: { id: string; createdAtMs: number; endpointIds: string[] }[];
  /** Where this page ended (undefined when it was empty). */
  next: MessageCursor | undefined;
  /** Messages looked at. */
  scanned: number;
}

/**
 * The next `limit` messages after `after` accepted more than `graceSeconds` and less than
 * `lookbackSeconds` ago (a range scan of
 * messages_created_at_idx), of which it returns those queued, with endpoints, and without a single
 * attempt row (a probe of attempts_message_idx each). Each message is looked at once, when it is
 * `graceSeconds` old: by then a job that Redis kept has normally made its first attempts.
 */
export async function findUnattemptedMessages(
  sql: postgres.Sql,
  options: { after: MessageCursor; graceSeconds: number; lookbackSeconds: number; limit: number },
): Promise<UnattemptedPage> {
  const rows = await sql<
    {
      id: string;
      created_ms: number;
      created_text: string;
      endpoint_ids: string[];
      unattempted: boolean;
    }[]
  >`
    select m.id, (extract(epoch from m.created_at) * 1000)::float8 as created_ms,
           m.created_at::text as created_text, m.endpoint_ids,
           m.enqueued_at is not null and cardinality(m.endpoint_ids) > 0
             and not exists (select 1 from attempts a where a.message_id = m.id) as unattempted
    from messages m
    where m.created_at >= ${options.after.createdAt}::timestamptz
      and (m.created_at, m.id) > (${options.after.createdAt}::timestamptz, ${options.after.id})
      and m.created_at < now() - make_interval(secs => ${options.graceSeconds})
      -- A scan that fell behind skips what is older rather than never catching up.
      and m.created_at > now() - make_interval(secs => ${options.lookbackSeconds})
    order by m.created_at, m.id
    limit ${options.limit}::int`;
  const last = rows[rows.length - 1];
  return {
    messages: rows
      .filter((row) => row.unattempted)
      .map((row) => ({ id: row.id, createdAtMs: row.created_ms, endpointIds: row.endpoint_ids })),
    next: last && { createdAt: last.created_text, id: last.id },
    scanned: rows.length,
  };
}

/** A cursor at the database's now minus `seconds`, where a scan with no cursor of its own starts. */
export async function cursorSecondsAgo(sql: postgres.Sql, seconds: number): Promise<MessageCursor> {
  const [row] = await sql<{ t: string }[]>`
    select (now() - make_interval(secs => ${seconds}))::text as t`;
  return { createdAt: row!.t, id: '' };
}
