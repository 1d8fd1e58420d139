import postgres from 'postgres';
import {
  attemptRowWritten,
  writeDeliveryOutcomes,
  type AttemptRecord,
  type EndpointTally,
  type RecoveredEndpoint,
} from '../db/deliveryOutcomes.js';
import { withDeadline } from '../deadline.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { addToTally, emptyTally, mergeTallyMaps } from './endpointTally.js';
import { writeIsolatingRows, type OutcomeBatch, type RefusedRow } from './writeIsolatingRows.js';

export type { AttemptRecord };

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

/**
 * Earliest time PostgreSQL's timestamptz holds (4714-11-24 BC); JavaScript dates reach further
 * back, and a time PostgreSQL refuses would hold up its endpoint's tally.
 */
const EARLIEST_TIMESTAMPTZ_MS = -210_866_803_200_000;

/** Records taken out for one write. */
interface Batch extends OutcomeBatch {
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
   * are dropped (logged at once and when writes resume, and counted in
   * hookfleet_recorder_attempts_dropped_total). Endpoint timestamps and counters are never dropped: they
   * are one small entry per endpoint. Default 200000.
   */
  maxPendingAttempts?: number;
  /**
   * Called after a write with the endpoints whose first success after an
   * `endpoint.failing_warning` it recorded (`endpoint.recovered`). Default: nothing.
   */
  onRecovered?: (endpoints: RecoveredEndpoint[]) => void;
}

/**
 * Records delivery outcomes without one UPDATE per delivery: attempts are coalesced per endpoint
 * in memory and written in one statement per flush (at most `flushMs` late; the SQL is
 * db/deliveryOutcomes.ts): an ordered row lock, one UPDATE … FROM unnest() of every touched
 * endpoint, one INSERT of the attempt rows.
 *
 * Monotonic: `last_success_at = greatest(old, new)`, so whichever worker flushes last, the column
 * never moves backwards. A flush that PostgreSQL could not take keeps its records and is retried
 * with backoff; a success is never forgotten while the process lives, and never counted twice
 * (see `unconfirmed`). A flush refused for one row's values is not retried as it was: the row is
 * isolated, repaired or dropped, and the rest written (see writeIsolatingRows.ts). `close()`
 * flushes what is left.
 */
export class SuccessRecorder {
  private tallies = new Map<string, EndpointTally>();
  private attempts: AttemptRecord[] = [];
  private oldestPendingMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private consecutiveErrors = 0;
  private closed = false;
  /** Attempt rows dropped since the last successful write, and the span of their times. */
  private dropped: DroppedAttempts | undefined;
  private lastFlushStartMs = 0;
  /**
   * A batch whose write failed after it may have reached PostgreSQL: when the connection drops
   * between COMMIT and its answer, the outcome is unknown. Before anything else is written it is
   * checked (is its last attempt row there?) and written again only if missing, so an outage
   * cannot double a batch's counters and attempt rows.
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

  record(outcome: AttemptRecord): void {
    let attempt = outcome;
    // An invalid date would throw when written, every time; the time of recording is close.
    if (!(attempt.attemptedAt.getTime() >= EARLIEST_TIMESTAMPTZ_MS))
      attempt = { ...attempt, attemptedAt: new Date() };
    const tally = this.tallies.get(attempt.endpointId) ?? emptyTally();
    addToTally(tally, attempt, attempt.attemptedAt.getTime());
    this.tallies.set(attempt.endpointId, tally);
    this.attempts.push(attempt);
    this.oldestPendingMs ??= Date.now();
    this.trimToBound();
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
    try {
      try {
        await withDeadline(this.confirmUnconfirmed(), WRITE_DEADLINE_MS, STUCK);
      } catch (error) {
        this.failedFlush(error);
        return;
      }
      const batch: Batch = {
        tallies: this.tallies,
        attempts: this.attempts,
        oldestMs: this.oldestPendingMs,
      };
      this.tallies = new Map();
      this.attempts = [];
      this.oldestPendingMs = undefined;
      const { sql } = this.options;
      const recovered: RecoveredEndpoint[] = [];
      const result = await writeIsolatingRows(batch, async (slice) => {
        recovered.push(
          ...(await withDeadline(
            writeDeliveryOutcomes(sql, slice.tallies, slice.attempts),
            WRITE_DEADLINE_MS,
            STUCK,
          )),
        );
      });
      if (recovered.length > 0) this.options.onRecovered?.(recovered);
      this.reportRefused(result.refused, result.statements, result.ok);
      if (!result.ok) {
        // An error PostgreSQL reported means the statement was rolled back; a lost connection may
        // have come after the commit.
        if (result.error instanceof postgres.PostgresError) {
          this.restore(concatBatches(result.failed, result.untried), batch.oldestMs);
        } else {
          this.unconfirmed = { ...result.failed, oldestMs: batch.oldestMs };
          this.restore(result.untried, batch.oldestMs);
        }
        this.failedFlush(result.error);
        return;
      }
      this.flushed(batch);
    } finally {
      this.options.metrics?.recorderPending.set(this.attempts.length);
    }
    if (this.attempts.length > 0 || this.tallies.size > 0) {
      this.schedule(this.attempts.length >= this.batchSize ? 0 : this.flushMs);
    }
  }

  private flushed(batch: Batch): void {
    this.consecutiveErrors = 0;
    if (batch.oldestMs !== undefined) {
      this.options.metrics?.recorderFlushLag.observe((Date.now() - batch.oldestMs) / 1000);
    }
    if (this.dropped !== undefined) {
      this.options.logger.warn(
        droppedFields(this.dropped),
        'attempt history rows dropped during the database outage; endpoint timestamps and counters were kept',
      );
      this.dropped = undefined;
    }
  }

  /**
   * Past `maxPendingAttempts`, drops the oldest attempt rows (never the tallies). Says so at once,
   * the first time in an outage, since the process may not live to report it; counts them in
   * hookfleet_recorder_attempts_dropped_total; and once PostgreSQL takes writes again, logs how
   * many were lost and the span of attempt times they covered.
   */
  private trimToBound(): void {
    const excess = this.attempts.length - this.maxPendingAttempts;
    if (excess <= 0) return;
    const gone = this.attempts.splice(0, excess);
    if (this.dropped === undefined) {
      this.options.logger.error(
        { maxPendingAttempts: this.maxPendingAttempts },
        'attempt history buffer full while PostgreSQL is unreachable; dropping the oldest attempt rows',
      );
    }
    const span = this.dropped ?? { count: 0, fromMs: Infinity, toMs: -Infinity };
    span.count += excess;
    for (const attempt of gone) {
      span.fromMs = Math.min(span.fromMs, attempt.attemptedAt.getTime());
      span.toMs = Math.max(span.toMs, attempt.attemptedAt.getTime());
    }
    this.dropped = span;
    this.options.metrics?.recorderAttemptsDropped.inc(excess);
  }

  /** The records stay (restored or unconfirmed by the caller); the next try waits with backoff. */
  private failedFlush(error: unknown): void {
    this.consecutiveErrors += 1;
    const retryMs = Math.min(this.flushMs * 2 ** this.consecutiveErrors, 10_000);
    this.options.logger.warn(
      { err: error, endpoints: this.tallies.size, attempts: this.pendingAttempts, retryMs },
      'success recorder flush failed; records kept for the next try',
    );
    this.schedule(retryMs);
  }

  /** Logs and counts the rows PostgreSQL refused even alone; never their text, only what names them. */
  private reportRefused(refused: RefusedRow[], statements: number, finished: boolean): void {
    if (refused.length === 0) return;
    const { logger, metrics } = this.options;
    for (const row of refused) {
      metrics?.recorderRowsRefused.inc({ action: row.action });
      const fields = {
        sqlState: row.sqlState,
        endpointId: row.endpointId,
        ...(row.attempt
          ? {
              messageId: row.attempt.messageId,
              attemptNumber: row.attempt.attemptNumber,
              outcome: row.attempt.outcome,
            }
          : { tally: row.tally }),
      };
      if (row.action === 'repaired')
        logger.warn(
          fields,
          'PostgreSQL refused an outcome row; written with its offending fields replaced',
        );
      else logger.error(fields, 'PostgreSQL refused an outcome row even repaired; dropped');
    }
    logger.warn(
      { refused: refused.length, statements, finished },
      finished
        ? 'outcome rows PostgreSQL refused were isolated; the rest of the batch was written'
        : 'outcome rows PostgreSQL refused were isolated before the write was interrupted',
    );
  }

  /** Settles `unconfirmed`: dropped if its last attempt row was written, queued again otherwise. Throws while PostgreSQL is unreachable. */
  private async confirmUnconfirmed(): Promise<void> {
    const batch = this.unconfirmed;
    if (!batch) return;
    // The batch is one statement, so one of its rows tells whether all of them were written. (A
    // batch without attempt rows, possible only after the in-memory bound dropped them or for a
    // lone tally isolated from its rows, is written again: its counters may then count twice.)
    const marker = batch.attempts[batch.attempts.length - 1];
    const written = marker !== undefined && (await attemptRowWritten(this.options.sql, marker));
    // A check that outlived its deadline may answer after a later one settled the batch.
    if (this.unconfirmed !== batch) return;
    this.unconfirmed = undefined;
    if (!written) this.restore(batch, batch.oldestMs);
  }

  /** Puts records that were not written back in front of what arrived meanwhile. */
  private restore(older: OutcomeBatch, oldestMs: number | undefined): void {
    this.tallies = mergeTallyMaps(older.tallies, this.tallies);
    this.attempts = older.attempts.concat(this.attempts);
    this.trimToBound();
    if (older.tallies.size > 0 || older.attempts.length > 0)
      this.oldestPendingMs = oldestMs ?? this.oldestPendingMs;
  }
}

/** Both batches' records in one (their tallies are of different endpoints, or merged). */
function concatBatches(first: OutcomeBatch, second: OutcomeBatch): OutcomeBatch {
  return {
    tallies: mergeTallyMaps(new Map(first.tallies), second.tallies),
    attempts: first.attempts.concat(second.attempts),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface DroppedAttempts {
  count: number;
  fromMs: number;
  toMs: number;
}

function droppedFields(dropped: DroppedAttempts) {
  return {
    dropped: dropped.count,
    attemptedFrom: new Date(dropped.fromMs).toISOString(),
    attemptedTo: new Date(dropped.toMs).toISOString(),
  };
}
