/**
 * The stale-endpoint sweep: deactivates active endpoints whose stale clock (the newest
 * of last success, reactivation and creation; db/staleClock.ts) is older than their
 * threshold, warns those within HOOKFLEET_STALE_WARNING_DAYS of it once, and deletes old attempt
 * history. Run daily by the maintenance queue's job scheduler and on demand by `hookfleet sweep`.
 *
 * Every change is a batch of at most `batchSize` rows in one short statement, with row locks
 * taken `skip locked` and `where active` in the UPDATE: two sweeps that overlap split the work
 * and each endpoint is reported by exactly one of them.
 */
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import {
  countPrunable,
  countProbes,
  countStale,
  countWarnings,
  databaseNow,
  pruneBatch,
  PRUNABLE,
  type Prunable,
  sampleStale,
  sweepStaleBatch,
  type StaleEndpoint,
  type StaleAction,
  type StaleRule,
  type StaleScan,
} from '../db/staleEndpoints.js';
import { staleDeadlineOf } from '../db/staleClock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import {
  logOperatorEvents,
  type OperatorEvent,
  type OperatorEvents,
} from '../delivery/operatorEvents.js';
import { sweepFailingEndpoints } from './failingSweep.js';
import type { StaleProbes } from './staleProbes.js';

export interface SweepDeps {
  config: Config;
  logger: Logger;
  dbClient: DbClient;
  metrics?: Metrics | undefined;
  /**
   * Where operational events go (delivery/operatorEvents.ts). Default: they are only logged, for
   * callers with no Redis at hand (tests of the SQL).
   */
  events?: OperatorEvents | undefined;
  /**
   * Sends `hookfleet.ping` to idle stale endpoints before they are deactivated (staleProbes.ts).
   * Default: no probing, every stale endpoint is deactivated (callers with no queue at hand).
   */
  probes?: StaleProbes | undefined;
}

/** Events only logged (with their type and endpoint), never delivered. */
function loggedEvents(logger: Logger): OperatorEvents {
  return {
    publish(events) {
      logOperatorEvents(logger, events);
      return Promise.resolve(true);
    },
  };
}

/** What the sweep is doing when it reports progress. */
export type SweepPhase = 'deactivate' | 'probe' | 'warn' | 'failing' | 'prune';

export interface SweepOptions {
  /** Change nothing; count what would change and return a sample. Default false. */
  dryRun?: boolean;
  /**
   * Dry runs only: count as a sweep that probes (idle stale endpoints probed, not deactivated).
   * Default: when `probes` is given. `hookfleet sweep --dry-run` has no queue to send with but
   * counts as the real sweep would.
   */
  probe?: boolean;
  /** Rows per statement. Default 5000. */
  batchSize?: number;
  /**
   * Called after each batch. Given, the sweep first counts the work of each phase (one extra
   * index-bound statement per phase) so `total` is known.
   */
  onProgress?: (done: number, total: number, phase: SweepPhase) => void;
  /** The moment staleness is judged at. Default: the database's now(). */
  now?: Date;
  /** Stops the sweep between two statements (it then rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface SweepSampleRow {
  id: string;
  url: string;
  lastSuccessAt: Date | null;
  staleAfterDays: number;
}

export interface SweepResult {
  dryRun: boolean;
  now: Date;
  /** Endpoints deactivated (in a dry run: that would be). */
  deactivated: number;
  /** Idle stale endpoints sent a `hookfleet.ping` instead (in a dry run: that would be). */
  probed: number;
  /** Endpoints reported as `endpoint.stale_warning` (in a dry run: that would be). */
  warned: number;
  /** Endpoints disabled for failing too long (in a dry run: that would be). */
  failingDisabled: number;
  /** Endpoints reported as `endpoint.failing_warning` (in a dry run: that would be). */
  failingWarned: number;
  /** Attempt rows deleted (in a dry run: that would be). */
  attemptsPruned: number;
  /** Messages deleted, with their bodies (in a dry run: that would be). */
  messagesPruned: number;
  /** Dry run only: up to 20 of the endpoints that would be deactivated, oldest clock first. */
  sample: SweepSampleRow[];
  /** Batches of operational events that could not be stored or enqueued (they were still logged). */
  eventsFailed: number;
  durationMs: {
    total: number;
    deactivate: number;
    probe: number;
    warn: number;
    failing: number;
    prune: number;
  };
  /** SQL statements run, and the longest of them: the longest any lock was held. */
  statements: number;
  longestStatementMs: number;
}

export const DEFAULT_SWEEP_BATCH_SIZE = 5000;
const SAMPLE_SIZE = 20;
const DAY_MS = 86_400_000;

/** Runs one sweep. */
export async function sweepStaleEndpoints(
  deps: SweepDeps,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const { config, dbClient } = deps;
  const sql = dbClient.sql;
  const batchSize = options.batchSize ?? DEFAULT_SWEEP_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer`);
  const startedMs = performance.now();
  const stats = { statements: 0, longestStatementMs: 0 };
  const timed = async <T>(statement: () => Promise<T>): Promise<T> => {
    options.signal?.throwIfAborted();
    const t0 = performance.now();
    try {
      return await statement();
    } finally {
      stats.statements += 1;
      stats.longestStatementMs = Math.max(stats.longestStatementMs, performance.now() - t0);
    }
  };

  const now = options.now ?? (await timed(() => databaseNow(sql)));
  const rule: StaleRule = {
    now,
    defaultDays: config.staleAfterDays,
    warningDays: config.staleWarningDays,
    // A real sweep probes only with something to send the pings with.
    probeGraceHours: (
      options.dryRun ? (options.probe ?? deps.probes !== undefined) : deps.probes !== undefined
    )
      ? config.staleProbeGraceHours
      : undefined,
  };
  const pruneBefore = {
    attempts: new Date(now.getTime() - config.attemptRetentionDays * DAY_MS),
    messages: new Date(now.getTime() - config.messageRetentionDays * DAY_MS),
  };
  const result: SweepResult = {
    dryRun: options.dryRun ?? false,
    now,
    deactivated: 0,
    probed: 0,
    warned: 0,
    failingDisabled: 0,
    failingWarned: 0,
    attemptsPruned: 0,
    messagesPruned: 0,
    sample: [],
    eventsFailed: 0,
    durationMs: { total: 0, deactivate: 0, probe: 0, warn: 0, failing: 0, prune: 0 },
    statements: 0,
    longestStatementMs: 0,
  };

  if (result.dryRun) {
    result.deactivated = await timed(() => countStale(sql, rule));
    result.probed = await timed(() => countProbes(sql, rule));
    result.warned = await timed(() => countWarnings(sql, rule));
    const failing = await sweepFailingEndpoints(
      { config, dbClient, events: loggedEvents(deps.logger) },
      { now, batchSize, dryRun: true, timed },
    );
    result.failingDisabled = failing.disabled;
    result.failingWarned = failing.warned;
    result.attemptsPruned = await timed(() =>
      countPrunable(sql, PRUNABLE.attempts, pruneBefore.attempts),
    );
    result.messagesPruned = await timed(() =>
      countPrunable(sql, PRUNABLE.messages, pruneBefore.messages),
    );
    const sample = await timed(() => sampleStale(sql, rule, SAMPLE_SIZE));
    result.sample = sample.map(({ id, url, lastSuccessAt, staleAfterDays }) => ({
      id,
      url,
      lastSuccessAt,
      staleAfterDays,
    }));
  } else {
    const events = deps.events ?? loggedEvents(deps.logger);
    const run = { sql, rule, batchSize, options, events, probes: deps.probes, timed, result };
    result.durationMs.deactivate = await measure(() =>
      runEndpointPhase(run, 'deactivate', deps.metrics),
    );
    // After deactivating: an endpoint probed now waits out the grace period either way.
    if (rule.probeGraceHours !== undefined)
      result.durationMs.probe = await measure(() => runEndpointPhase(run, 'probe'));
    if (rule.warningDays > 0)
      result.durationMs.warn = await measure(() => runEndpointPhase(run, 'warn'));
    result.durationMs.failing = await measure(async () => {
      options.onProgress?.(0, 0, 'failing');
      const failing = await sweepFailingEndpoints(
        { config, dbClient, events, metrics: deps.metrics },
        { now, batchSize, timed },
      );
      result.failingDisabled = failing.disabled;
      result.failingWarned = failing.warned;
      result.eventsFailed += failing.eventsFailed;
      const done = failing.disabled + failing.warned;
      options.onProgress?.(done, done, 'failing');
    });
    result.durationMs.prune = await measure(async () => {
      result.attemptsPruned = await runPrunePhase(run, PRUNABLE.attempts, pruneBefore.attempts);
      result.messagesPruned = await runPrunePhase(run, PRUNABLE.messages, pruneBefore.messages);
    });
  }

  result.durationMs.total = performance.now() - startedMs;
  result.statements = stats.statements;
  result.longestStatementMs = stats.longestStatementMs;
  deps.logger.info(
    { dryRun: result.dryRun, ...summariseSweep(result) },
    result.dryRun ? 'stale sweep dry run finished' : 'stale sweep finished',
  );
  return result;
}

/** The counts and timings of a sweep, as logged and as kept as the maintenance job's result. */
export function summariseSweep(result: SweepResult) {
  return {
    deactivated: result.deactivated,
    probed: result.probed,
    warned: result.warned,
    failingDisabled: result.failingDisabled,
    failingWarned: result.failingWarned,
    attemptsPruned: result.attemptsPruned,
    messagesPruned: result.messagesPruned,
    eventsFailed: result.eventsFailed,
    durationMs: Math.round(result.durationMs.total),
    longestStatementMs: Math.round(result.longestStatementMs),
  };
}

interface Run {
  sql: DbClient['sql'];
  rule: StaleRule;
  batchSize: number;
  options: SweepOptions;
  events: OperatorEvents;
  probes: StaleProbes | undefined;
  timed: <T>(statement: () => Promise<T>) => Promise<T>;
  result: SweepResult;
}

/** Deactivates (or warns) batch by batch, first through the default scan, then the custom one. */
async function runEndpointPhase(run: Run, phase: StaleAction, metrics?: Metrics): Promise<void> {
  const { sql, rule, batchSize, options, timed, result } = run;
  const count = { deactivate: countStale, probe: countProbes, warn: countWarnings }[phase];
  const total = options.onProgress ? await timed(() => count(sql, rule)) : 0;
  let done = 0;
  options.onProgress?.(0, total, phase);
  for (const scan of ['default', 'custom'] as const satisfies StaleScan[]) {
    let afterClock: Date | undefined;
    for (;;) {
      const batch = await timed(() =>
        sweepStaleBatch(sql, rule, phase, scan, batchSize, afterClock),
      );
      if (batch.length > 0) {
        done += batch.length;
        if (phase === 'deactivate') {
          result.deactivated += batch.length;
          metrics?.endpointsDeactivated.inc({ reason: 'stale' }, batch.length);
        } else if (phase === 'probe') {
          result.probed += batch.length;
        } else {
          result.warned += batch.length;
        }
        // Only the default scan walks the clock index in order, and only it pages.
        if (scan === 'default')
          afterClock = new Date(Math.max(...batch.map((e) => e.indexedClock.getTime())));
        if (phase === 'probe') {
          // A ping that cannot be sent is logged; the grace period then ends in deactivation.
          await run.probes?.send(batch);
        } else if (
          !(await run.events.publish(batch.map((endpoint) => staleEvent(phase, endpoint))))
        ) {
          result.eventsFailed += 1;
        }
      }
      options.onProgress?.(done, Math.max(total, done), phase);
      if (batch.length < batchSize) break;
    }
  }
}

/**
 * Deletes `what` past its retention, batch by batch, oldest first; returns how many. Progress is
 * reported for attempts, the larger and the one `hookfleet sweep` has always shown.
 */
async function runPrunePhase(run: Run, what: Prunable, before: Date): Promise<number> {
  const { sql, batchSize, options, timed } = run;
  const progress = what === PRUNABLE.attempts ? options.onProgress : undefined;
  const total = progress ? await timed(() => countPrunable(sql, what, before)) : 0;
  progress?.(0, total, 'prune');
  let deleted = 0;
  let after: Date | undefined;
  for (;;) {
    const batch = await timed(() => pruneBatch(sql, what, before, batchSize, after));
    deleted += batch.deleted;
    after = batch.lastTime ?? after;
    progress?.(deleted, Math.max(total, deleted), 'prune');
    if (batch.deleted < batchSize) return deleted;
  }
}

/** The operational event of one endpoint the stale sweep disabled or warned. */
function staleEvent(phase: Exclude<StaleAction, 'probe'>, endpoint: StaleEndpoint): OperatorEvent {
  const data = {
    endpointId: endpoint.id,
    ownerId: endpoint.ownerId,
    url: endpoint.url,
    lastSuccessAt: endpoint.lastSuccessAt?.toISOString() ?? null,
    staleAfterDays: endpoint.staleAfterDays,
  };
  if (phase === 'deactivate')
    return { type: 'endpoint.disabled', data: { ...data, reason: 'stale' } };
  const disablesAt = staleDeadlineOf(endpoint.clockStartedAt, endpoint.staleAfterDays);
  return {
    type: 'endpoint.stale_warning',
    data: { ...data, disablesAt: disablesAt.toISOString() },
  };
}

async function measure(work: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await work();
  return performance.now() - t0;
}
