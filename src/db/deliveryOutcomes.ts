/**
 * The success recorder's statements (worker/successRecorder.ts): one write of a batch of delivery
 * outcomes (endpoint tallies and attempt rows), the check whether a batch whose answer was lost
 * was written, and what the recorder needs to know about PostgreSQL's refusals: which SQLSTATEs a
 * single row can cause, and how to make a refused row acceptable.
 */
import postgres from 'postgres';
import { readableText } from '../readableText.js';
import { pgArray } from './client.js';

/** One HTTP attempt of a delivery, as kept in the `attempts` table. */
export interface AttemptRecord {
  messageId: string;
  endpointId: string;
  attemptNumber: number;
  attemptedAt: Date;
  outcome: 'succeeded' | 'retrying' | 'failed';
  statusCode?: number | undefined;
  durationMs: number;
  error?: string | undefined;
}

/** What a batch of attempts changes on one endpoint row, coalesced. */
export interface EndpointTally {
  lastSuccessAtMs: number | undefined;
  lastFailureAtMs: number | undefined;
  successes: number;
  failures: number;
  /** Failures after the newest success in this tally (or all of them, if none succeeded). */
  failuresSinceSuccess: number;
  /** The earliest of those failures: where `failing_since` starts if the endpoint was not failing. */
  firstFailureSinceSuccessAtMs: number | undefined;
}

/** An endpoint whose first success after an `endpoint.failing_warning` this write recorded. */
export interface RecoveredEndpoint {
  id: string;
  ownerId: string | null;
  url: string;
  /** When the failing streak that ended began. */
  failingSince: Date;
  lastSuccessAt: Date;
}

/** Bounds of an attempt row's `error`, whatever produced the text. */
const ERROR_MAX_CHARS = 1024;
const ERROR_MAX_BYTES = 2048;
const SMALLINT_MAX = 32_767;
const INT_MAX = 2_147_483_647;

/**
 * Writes the tallies and the attempt rows in one statement: every touched endpoint row locked in
 * id order, one UPDATE … FROM unnest(), one INSERT of the attempt rows.
 *
 * `last_success_at = greatest(old, new)`, so whichever worker writes last, it never moves
 * backwards. `failing_since` is set by the first failure after the newest success and kept while
 * failures go on, cleared by a newer success. Error texts go through readableText here too,
 * whoever made them: a NUL in one would make PostgreSQL refuse the whole statement.
 *
 * Returns the endpoints this write ended a warned failing streak of (see RecoveredEndpoint).
 */
export async function writeDeliveryOutcomes(
  sql: postgres.Sql,
  tallies: ReadonlyMap<string, EndpointTally>,
  attempts: readonly AttemptRecord[],
): Promise<RecoveredEndpoint[]> {
  // Sorted ids and an ordered FOR UPDATE: two workers flushing overlapping endpoints lock them in
  // the same order, so they queue behind each other instead of deadlocking.
  const ids = [...tallies.keys()].sort();
  const rows = ids.map((id) => tallies.get(id)!);
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  const errors = attempts.map((a) =>
    a.error === undefined
      ? null
      : readableText(a.error, { maxChars: ERROR_MAX_CHARS, maxBytes: ERROR_MAX_BYTES }),
  );
  // One statement rather than a transaction block: a statement is atomic by itself, and with
  // sql.begin() postgres.js 3.4.9 throws an uncatchable TypeError (crashing the worker) when the
  // reserved connection drops mid-transaction (porsager/postgres#1208), which is what a
  // PostgreSQL outage does. Data-modifying CTEs always run, whether read or not. Counters arrive
  // as bigint and consecutive_failures saturates, so no tally can overflow an int column.
  const [result] = await sql<{ recovered: RecoveredRow[] | null }[]>`
    with locked as (
      select id, failing_since as was_failing_since, failing_warned_at
      from endpoints where id = any(${pgArray(ids)}::text[]) order by id for update
    ), v as (
      -- Times come from the worker's clock; one running ahead must not put last_success_at in
      -- the future, where greatest() would keep it and the sweep would never see the endpoint
      -- as stale. Clamped to the database's clock (least() alone would turn a null into now()).
      select id,
        case when success_at is null then null else least(success_at, now()) end as last_success_at,
        case when failure_at is null then null else least(failure_at, now()) end as last_failure_at,
        case when first_failure_at is null then null else least(first_failure_at, now()) end
          as first_failure_at,
        successes, failures, failures_since_success
      from unnest(
        ${pgArray(ids)}::text[],
        ${pgArray(rows.map((r) => iso(r.lastSuccessAtMs)))}::timestamptz[],
        ${pgArray(rows.map((r) => iso(r.lastFailureAtMs)))}::timestamptz[],
        ${pgArray(rows.map((r) => r.successes))}::bigint[],
        ${pgArray(rows.map((r) => r.failures))}::bigint[],
        ${pgArray(rows.map((r) => r.failuresSinceSuccess))}::bigint[],
        ${pgArray(rows.map((r) => iso(r.firstFailureSinceSuccessAtMs)))}::timestamptz[]
      ) as u(id, success_at, failure_at, successes, failures, failures_since_success,
             first_failure_at)
    ), updated as (
      update endpoints e set
        last_success_at = greatest(e.last_success_at, v.last_success_at),
        last_failure_at = greatest(e.last_failure_at, v.last_failure_at),
        consecutive_failures = least(2147483647, case
          when v.last_success_at is not null
            and (e.last_success_at is null or v.last_success_at >= e.last_success_at)
          then v.failures_since_success
          -- Failures older than the success another worker already wrote do not count.
          when v.last_failure_at is null or v.last_failure_at <= e.last_success_at
          then e.consecutive_failures
          else e.consecutive_failures + v.failures end),
        -- The same three cases: a newer success restarts the streak from the failures after it
        -- (none: not failing); failures older than the stored success change nothing; newer
        -- failures start a streak unless one is running. Never before the success it follows,
        -- whatever the workers' clocks say.
        failing_since = case
          when v.last_success_at is not null
            and (e.last_success_at is null or v.last_success_at >= e.last_success_at)
          then case when v.first_failure_at is null then null
                    else greatest(v.first_failure_at, v.last_success_at) end
          when v.last_failure_at is null or v.last_failure_at <= e.last_success_at
          then e.failing_since
          else coalesce(e.failing_since, greatest(v.first_failure_at, e.last_success_at)) end,
        success_count = e.success_count + v.successes,
        failure_count = e.failure_count + v.failures
      from v join locked using (id)
      where e.id = v.id
      returning e.id, e.owner_id, e.url, e.failing_since, e.last_success_at,
        locked.was_failing_since, locked.failing_warned_at
    ), inserted as (
      insert into attempts
        (message_id, endpoint_id, attempt_number, attempted_at, outcome, status_code, duration_ms, error)
      select * from unnest(
        ${pgArray(attempts.map((a) => a.messageId))}::text[],
        ${pgArray(attempts.map((a) => a.endpointId))}::text[],
        ${pgArray(attempts.map((a) => a.attemptNumber))}::smallint[],
        ${pgArray(attempts.map((a) => a.attemptedAt.toISOString()))}::timestamptz[],
        ${pgArray(attempts.map((a) => a.outcome))}::text[],
        ${pgArray(attempts.map((a) => a.statusCode ?? null))}::smallint[],
        ${pgArray(attempts.map((a) => a.durationMs))}::int[],
        ${pgArray(errors)}::text[]
      )
      returning id
    )
    select (select count(*) from inserted) as inserted,
      (select json_agg(json_build_object('id', id, 'owner_id', owner_id, 'url', url,
                'failing_since', was_failing_since, 'last_success_at', last_success_at))
       from updated
       where failing_since is null and was_failing_since is not null
         and failing_warned_at >= was_failing_since) as recovered`;
  return (result?.recovered ?? []).map((row) => ({
    id: row.id,
    ownerId: row.owner_id,
    url: row.url,
    failingSince: new Date(row.failing_since),
    lastSuccessAt: new Date(row.last_success_at),
  }));
}

/** A row of `recovered`, as json_build_object gives it. */
interface RecoveredRow {
  id: string;
  owner_id: string | null;
  url: string;
  failing_since: string;
  last_success_at: string;
}

/**
 * Whether `marker`'s attempt row is in the table. A batch is one statement, so one of its rows
 * tells whether all of them were written.
 */
export async function attemptRowWritten(
  sql: postgres.Sql,
  marker: AttemptRecord,
): Promise<boolean> {
  const rows = await sql`
    select 1 from attempts
    where message_id = ${marker.messageId} and endpoint_id = ${marker.endpointId}
      and attempt_number = ${marker.attemptNumber}
      and attempted_at = ${marker.attemptedAt.toISOString()}::timestamptz
    limit 1`;
  return rows.length > 0;
}

/**
 * Whether PostgreSQL refused the statement for the values of some row, so that writing the rows
 * apart isolates the culprit (and writing the same batch again would fail the same way forever):
 * - 22 data exception: a value the column cannot take (a NUL or invalid UTF-8 in text 22021, a
 *   number out of range 22003, unparsable input 22P02, a time out of range 22008);
 * - 23 integrity constraint violation: a row breaks a NOT NULL, CHECK, UNIQUE or foreign key;
 * - 21 cardinality violation: two rows of one batch collide;
 * - 54 program limit exceeded: a value too large for an index entry, or a batch too large for one
 *   statement (its halves then fit).
 * Every other refusal is retried whole, with backoff, because no row causes it and the batch is
 * fine once the cause passes: 08 connection, 40 serialization failure or deadlock, 53 disk full
 * or too many connections, 57 shutdown or statement timeout, 58 and XX system errors, and 42 (a
 * missing table or column, a privilege): a deployment fault that splitting would only turn into
 * dropped rows, while migrating lets the batch through unchanged.
 */
export function isRowCausedError(error: unknown): boolean {
  if (!(error instanceof postgres.PostgresError)) return false;
  return ['21', '22', '23', '54'].includes(error.code.slice(0, 2));
}

/** The SQLSTATE of a refusal, for logs; undefined for an error PostgreSQL did not report. */
export function sqlStateOf(error: unknown): string | undefined {
  return error instanceof postgres.PostgresError ? error.code : undefined;
}

/**
 * `attempt` with every field the database could refuse made acceptable: numbers cut to their
 * column's range (a status code that does not fit is dropped and named in the error), the error
 * text noting that the row was repaired. Ids are kept: changing them would misfile the row.
 */
export function repairAttempt(attempt: AttemptRecord, sqlState: string | undefined): AttemptRecord {
  const statusFits = fits(attempt.statusCode, 0, SMALLINT_MAX);
  const notes = [
    `recorded after PostgreSQL refused the row${sqlState === undefined ? '' : ` (SQLSTATE ${sqlState})`}`,
    ...(attempt.statusCode === undefined || statusFits
      ? []
      : [`status code ${String(attempt.statusCode)} not recordable`]),
  ];
  return {
    ...attempt,
    attemptNumber: clampInt(attempt.attemptNumber, 1, SMALLINT_MAX),
    statusCode: statusFits ? attempt.statusCode : undefined,
    durationMs: clampInt(attempt.durationMs, 0, INT_MAX),
    error: `${notes.join('; ')}${attempt.error === undefined ? '' : `: ${attempt.error}`}`,
  };
}

/** `tally` with its numbers made whole and non-negative and impossible times left out. */
export function repairTally(tally: EndpointTally): EndpointTally {
  const time = (ms: number | undefined) =>
    ms !== undefined && Number.isFinite(ms) ? ms : undefined;
  return {
    lastSuccessAtMs: time(tally.lastSuccessAtMs),
    lastFailureAtMs: time(tally.lastFailureAtMs),
    successes: clampInt(tally.successes, 0, Number.MAX_SAFE_INTEGER),
    failures: clampInt(tally.failures, 0, Number.MAX_SAFE_INTEGER),
    failuresSinceSuccess: clampInt(tally.failuresSinceSuccess, 0, INT_MAX),
    firstFailureSinceSuccessAtMs: time(tally.firstFailureSinceSuccessAtMs),
  };
}

function fits(value: number | undefined, min: number, max: number): boolean {
  return value !== undefined && Number.isInteger(value) && value >= min && value <= max;
}

function clampInt(value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) return min;
  return Math.min(max, Math.max(min, Math.round(value)));
}
