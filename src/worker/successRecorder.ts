import postgres from 'postgres';
import { pgArray } from '../db/client.js';
import { withDeadline } from '../deadline.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** Shortest time between two flushes started because the worker went idle (see `idle`). */
export const IDLE_FLUSH_INTERVAL_MS = 100;

/**
 * Longest a flush waits for PostgreSQL. A query on a connection that died without a close (seen
 * after pg_terminate_backend under load) never settles; without a bound the recorder would stop
 * writing for good, and shutdown would wait out its whole budget. A flush past the deadline is
 * handled like a lost reply: it may have committed, so it is checked before being written again.
 */
const WRITE_DEADLINE_MS = 15_000;
const STUCK = `no answer from PostgreSQL within ${WRITE_DEADLINE_MS} ms`;

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
interface EndpointTally {
  lastSuccessAtMs: number | undefined;
  lastFailureAtMs: number | undefined;
  successes: number;
  failures: number;
  /** Failures after the newest success in this tally (or all of them, if none succeeded). */
  failuresSinceSuccess: number;
}

/** Records taken out for one write. */
interface Batch {
  tallies: Map<string, EndpointTally>;
  attempts: AttemptRecord[];
  oldestMs: number | undefined;
}

export interface SuccessRecorderOptions {
  sql: postgres.Sql;
  logger: Logger;
  metrics?: Metrics;
  /** Longest a record waits before it is written. Default 1000. */
  flushMs?: number;
  /** A flush starts early once this many attempts are waiting. Default 2000. */
  batchSize?: number;
  /**
   * Attempt-history rows kept in memory while PostgreSQL is unreachable; past it the oldest rows
   * are dropped (and counted in the log). Endpoint timestamps and counters are never dropped: they
   * are one small entry per endpoint. Default 200000.
   */
  maxPendingAttempts?: number;
}

/**
 * Records delivery outcomes without one UPDATE per delivery: attempts are coalesced per endpoint
 * in memory and written in one transaction per flush (at most `flushMs` late): an ordered row
 * lock, one UPDATE … FROM unnest() of every touched endpoint, one INSERT of the attempt rows.
 *
 * Monotonic: `last_success_at = greatest(old, new)`, so whichever worker flushes last, the column
 * never moves backwards. A failed flush keeps its records and is retried with backoff; a success
 * is never forgotten while the process lives, and never counted twice (see `unconfirmed`).
 * `close()` flushes what is left.
 */
export class SuccessRecorder {
  private tallies = new Map<string, EndpointTally>();
  private attempts: AttemptRecord[] = [];
  private oldestPendingMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private consecutiveErrors = 0;
  private closed = false;
  private droppedAttempts = 0;
  private lastFlushStartMs = 0;
  /**
   * A batch whose write failed after it may have reached PostgreSQL: when the connection drops
   * between COMMIT and its answer, the outcome is unknown. Before anything else is written it is
   * checked (is its last attempt row there?) and written again only if missing, so an outage
   * cannot double a batch's counters and attempt rows (issue #7).
   */
  private unconfirmed: Batch | undefined;
  private readonly flushMs: number;
  private readonly batchSize: number;
  private readonly maxPendingAttempts: number;

  constructor(private readonly options: SuccessRecorderOptions) {
    this.flushMs = options.flushMs ?? 1000;
    this.batchSize = options.batchSize ?? 2000;
    this.maxPendingAttempts = options.maxPendingAttempts ?? 200_000;
  }

  /** Records waiting for a flush. */
  get pendingAttempts(): number {
    return this.attempts.length + (this.unconfirmed?.attempts.length ?? 0);
  }

  private get isEmpty(): boolean {
    return this.tallies.size === 0 && this.attempts.length === 0 && this.unconfirmed === undefined;
  }

  record(attempt: AttemptRecord): void {
    const atMs = attempt.attemptedAt.getTime();
    const tally = this.tallies.get(attempt.endpointId) ?? emptyTally();
    if (attempt.outcome === 'succeeded') {
      tally.successes += 1;
      if (tally.lastSuccessAtMs === undefined || atMs >= tally.lastSuccessAtMs) {
        tally.lastSuccessAtMs = atMs;
        tally.failuresSinceSuccess = 0;
      }
    } else {
      tally.failures += 1;
      tally.lastFailureAtMs = Math.max(tally.lastFailureAtMs ?? atMs, atMs);
      if (tally.lastSuccessAtMs === undefined || atMs >= tally.lastSuccessAtMs)
        tally.failuresSinceSuccess += 1;
    }
    this.tallies.set(attempt.endpointId, tally);
    this.attempts.push(attempt);
    this.oldestPendingMs ??= Date.now();
    if (this.attempts.length > this.maxPendingAttempts) {
      const drop = this.attempts.length - this.maxPendingAttempts;
      this.attempts.splice(0, drop);
      this.droppedAttempts += drop;
    }
    this.options.metrics?.recorderPending.set(this.attempts.length);
    if (this.attempts.length >= this.batchSize && !this.flushing && this.consecutiveErrors === 0) {
      void this.flush();
    } else {
      this.schedule(this.flushMs);
    }
  }

  /**
   * Told by the worker when it has no delivery in flight: with nothing more coming to batch with,
   * write now instead of at the timer, so `last_success_at` lags by milliseconds at low load.
   * At most one such early flush per IDLE_FLUSH_INTERVAL_MS, so a worker that goes idle between
   * every delivery still writes in batches.
   */
  idle(): void {
    if (this.isEmpty || this.flushing || this.closed || this.consecutiveErrors > 0) return;
    const waitMs = IDLE_FLUSH_INTERVAL_MS - (Date.now() - this.lastFlushStartMs);
    clearTimeout(this.timer);
    this.timer = undefined;
    if (waitMs <= 0) void this.flush();
    else this.schedule(Math.min(waitMs, this.flushMs));
  }

  /** Writes everything pending now; resolves when that write finished (or failed and was kept). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.isEmpty) return;
    this.lastFlushStartMs = Date.now();
    this.flushing = this.writeBatch().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops the timer and flushes until nothing is left or `timeoutMs` passes. Safe to call twice. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const deadline = Date.now() + timeoutMs;
    while (!this.isEmpty && Date.now() < deadline) {
      await this.flush();
      if (this.consecutiveErrors > 0)
        await delay(Math.min(500, Math.max(0, deadline - Date.now())));
    }
    if (!this.isEmpty) {
      this.options.logger.error(
        {
          endpoints: this.tallies.size + (this.unconfirmed?.tallies.size ?? 0),
          attempts: this.pendingAttempts,
        },
        'success recorder closed with unwritten records (PostgreSQL unreachable until the shutdown bound)',
      );
    }
  }

  private schedule(afterMs: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, afterMs);
  }

  private async writeBatch(): Promise<void> {
    let batch: Batch | undefined;
    try {
      await withDeadline(this.confirmUnconfirmed(), WRITE_DEADLINE_MS, STUCK);
      batch = { tallies: this.tallies, attempts: this.attempts, oldestMs: this.oldestPendingMs };
      this.tallies = new Map();
      this.attempts = [];
      this.oldestPendingMs = undefined;
      await withDeadline(this.write(batch.tallies, batch.attempts), WRITE_DEADLINE_MS, STUCK);
      this.consecutiveErrors = 0;
      if (batch.oldestMs !== undefined) {
        this.options.metrics?.recorderFlushLag.observe((Date.now() - batch.oldestMs) / 1000);
      }
      if (this.droppedAttempts > 0) {
        this.options.logger.warn(
          { dropped: this.droppedAttempts },
          'attempt history rows dropped during a database outage',
        );
        this.droppedAttempts = 0;
      }
    } catch (error) {
      this.consecutiveErrors += 1;
      if (batch) {
        // An error PostgreSQL reported means the statement was rolled back; a lost connection may
        // have come after the commit.
        if (error instanceof postgres.PostgresError)
          this.restore(batch.tallies, batch.attempts, batch.oldestMs);
        else this.unconfirmed = batch;
      }
      const retryMs = Math.min(this.flushMs * 2 ** this.consecutiveErrors, 10_000);
      this.options.logger.warn(
        { err: error, endpoints: this.tallies.size, attempts: this.pendingAttempts, retryMs },
        'success recorder flush failed; records kept for the next try',
      );
      this.schedule(retryMs);
      return;
    } finally {
      this.options.metrics?.recorderPending.set(this.attempts.length);
    }
    if (this.attempts.length > 0 || this.tallies.size > 0) {
      this.schedule(this.attempts.length >= this.batchSize ? 0 : this.flushMs);
    }
  }

  /** Settles `unconfirmed`: dropped if its last attempt row was written, queued again otherwise. Throws while PostgreSQL is unreachable. */
  private async confirmUnconfirmed(): Promise<void> {
    const batch = this.unconfirmed;
    if (!batch) return;
    // The batch is one statement, so one of its rows tells whether all of them were written. (A
    // batch without attempt rows, possible only after the in-memory bound dropped them, is
    // written again: its counters may then count twice.)
    const marker = batch.attempts[batch.attempts.length - 1];
    const { sql } = this.options;
    const written =
      marker !== undefined &&
      (
        await sql`
          select 1 from attempts
          where message_id = ${marker.messageId} and endpoint_id = ${marker.endpointId}
            and attempt_number = ${marker.attemptNumber} and attempted_at = ${marker.attemptedAt.toISOString()}::timestamptz
          limit 1`
      ).length > 0;
    // A check that outlived its deadline may answer after a later one settled the batch.
    if (this.unconfirmed !== batch) return;
    this.unconfirmed = undefined;
    if (!written) this.restore(batch.tallies, batch.attempts, batch.oldestMs);
  }

  /** Puts a batch that failed to write back in front of what arrived meanwhile. */
  private restore(
    tallies: Map<string, EndpointTally>,
    attempts: AttemptRecord[],
    oldestMs: number | undefined,
  ): void {
    for (const [id, newer] of this.tallies) {
      const older = tallies.get(id);
      tallies.set(id, older ? mergeTallies(older, newer) : newer);
    }
    this.tallies = tallies;
    this.attempts = attempts.concat(this.attempts);
    if (this.attempts.length > this.maxPendingAttempts) {
      const drop = this.attempts.length - this.maxPendingAttempts;
      this.attempts.splice(0, drop);
      this.droppedAttempts += drop;
    }
    this.oldestPendingMs = oldestMs ?? this.oldestPendingMs;
  }

  private async write(
    tallies: Map<string, EndpointTally>,
    attempts: AttemptRecord[],
  ): Promise<void> {
    const { sql } = this.options;
    // Sorted ids and an ordered FOR UPDATE: two workers flushing overlapping endpoints lock them in
    // the same order, so they queue behind each other instead of deadlocking.
    const ids = [...tallies.keys()].sort();
    const rows = ids.map((id) => tallies.get(id)!);
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    // One statement rather than a transaction block: a statement is atomic by itself, and with
    // sql.begin() postgres.js 3.4.9 throws an uncatchable TypeError (crashing the worker) when the
    // reserved connection drops mid-transaction (porsager/postgres#1208), which is what a
    // PostgreSQL outage does (issue #7). Data-modifying CTEs always run, whether read or not.
    await sql`
      with locked as (
        select id from endpoints where id = any(${pgArray(ids)}::text[]) order by id for update
      ), v as (
        select * from unnest(
          ${pgArray(ids)}::text[],
          ${pgArray(rows.map((r) => iso(r.lastSuccessAtMs)))}::timestamptz[],
          ${pgArray(rows.map((r) => iso(r.lastFailureAtMs)))}::timestamptz[],
          ${pgArray(rows.map((r) => r.successes))}::int[],
          ${pgArray(rows.map((r) => r.failures))}::int[],
          ${pgArray(rows.map((r) => r.failuresSinceSuccess))}::int[]
        ) as v(id, last_success_at, last_failure_at, successes, failures, failures_since_success)
      ), updated as (
        update endpoints e set
          last_success_at = greatest(e.last_success_at, v.last_success_at),
          last_failure_at = greatest(e.last_failure_at, v.last_failure_at),
          consecutive_failures = case
            when v.last_success_at is not null
              and (e.last_success_at is null or v.last_success_at >= e.last_success_at)
            then v.failures_since_success
            -- Failures older than the success another worker already wrote do not count.
            when v.last_failure_at is null or v.last_failure_at <= e.last_success_at
            then e.consecutive_failures
            else e.consecutive_failures + v.failures end,
          success_count = e.success_count + v.successes,
          failure_count = e.failure_count + v.failures
        from v join locked using (id)
        where e.id = v.id
        returning e.id
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
          ${pgArray(attempts.map((a) => a.error ?? null))}::text[]
        )
        returning id
      )
      select (select count(*) from updated) as updated, (select count(*) from inserted) as inserted`;
  }
}

function emptyTally(): EndpointTally {
  return {
    lastSuccessAtMs: undefined,
    lastFailureAtMs: undefined,
    successes: 0,
    failures: 0,
    failuresSinceSuccess: 0,
  };
}

/** Combines an older tally with a newer one for the same endpoint. */
function mergeTallies(older: EndpointTally, newer: EndpointTally): EndpointTally {
  const max = (a: number | undefined, b: number | undefined) =>
    a === undefined ? b : b === undefined ? a : Math.max(a, b);
  return {
    lastSuccessAtMs: max(older.lastSuccessAtMs, newer.lastSuccessAtMs),
    lastFailureAtMs: max(older.lastFailureAtMs, newer.lastFailureAtMs),
    successes: older.successes + newer.successes,
    failures: older.failures + newer.failures,
    failuresSinceSuccess:
      newer.lastSuccessAtMs !== undefined
        ? newer.failuresSinceSuccess
        : older.failuresSinceSuccess + newer.failures,
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
