/**
 * Scheduled work on the `maintenance` queue: the daily stale-endpoint sweep, and housekeeping
 * every minute (housekeeping.ts).
 *
 * Every worker process (and `hookfleet start`) upserts the same job scheduler under a fixed id.
 * BullMQ keeps one scheduler per id and gives each run a deterministic job id
 * (`repeat:<scheduler id>:<time>`), so however many processes register it, each period yields
 * exactly one job, which exactly one of them runs.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { MAINTENANCE_QUEUE } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Lifecycle } from '../lifecycle.js';
import { createWorkerRedis, quitRedis } from '../redis.js';
import { singleQueuePrefix } from '../queueShards.js';
import type { Resolver } from '../delivery/addressGuard.js';
import { summariseSweep, sweepStaleEndpoints } from './staleSweep.js';
import { logRepeatedErrors } from '../repeatedErrorLog.js';
import { createHousekeeping, HOUSEKEEPING_JOB } from './housekeeping.js';

/** Id of the job scheduler that runs the sweep; fixed, so every process upserts the same one. */
export const SWEEP_SCHEDULER_ID = 'sweep-stale-endpoints';
/** Name of the sweep's jobs on the maintenance queue. */
export const SWEEP_JOB = 'sweep-stale-endpoints';

/** Options of every sweep job the scheduler creates. */
export const SWEEP_JOB_OPTIONS = {
  // A sweep cut short (PostgreSQL restarting, a shutdown) is retried; it is idempotent.
  attempts: 3,
  backoff: { type: 'exponential', delay: 60_000 },
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 100 },
} as const;

export interface MaintenanceDeps {
  config: Config;
  logger: Logger;
  dbClient: DbClient;
  metrics?: Metrics | undefined;
  /** DNS resolver for the operator webhook's address guard; tests inject one. */
  resolve?: Resolver | undefined;
}

export interface RunningMaintenance {
  /** Stops a running sweep between two statements, stops the worker, closes Redis. Safe to call twice. */
  close(): Promise<void>;
}

/** What a sweep job stores as its return value (shown in Bull Board). */
export interface SweepJobResult {
  deactivated: number;
  warned: number;
  attemptsPruned: number;
  messagesPruned: number;
  eventsFailed: number;
  durationMs: number;
  longestStatementMs: number;
}

/**
 * Registers the sweep's job scheduler (pattern HOOKFLEET_SWEEP_CRON in HOOKFLEET_SWEEP_TZ) and
 * starts a worker with concurrency 1 on the maintenance queue.
 */
export async function startMaintenance(deps: MaintenanceDeps): Promise<RunningMaintenance> {
  const { config, logger } = deps;
  const life = new Lifecycle(logger);
  const connection = life.add(
    'maintenance redis',
    createWorkerRedis(config.redis, 'hookfleet:maintenance'),
    quitRedis,
  );
  const queue = life.add(
    'maintenance queue',
    new Queue(MAINTENANCE_QUEUE, {
      connection,
      prefix: singleQueuePrefix(config, MAINTENANCE_QUEUE),
    }),
    (q) => q.close(),
  );
  // Without a listener BullMQ prints each reconnection error, with its stack, on stderr.
  queue.on('error', (error) => logger.debug({ err: error }, 'maintenance queue error'));
  const housekeeping = life.add('housekeeping', createHousekeeping({ ...deps, connection }), (h) =>
    h.close(),
  );
  try {
    // A run another process registered a moment ago is as good as ours (see below).
    await housekeeping.schedule(queue).catch((error: unknown) => {
      if (!isIterationTaken(error)) throw error;
    });
    await queue.upsertJobScheduler(
      SWEEP_SCHEDULER_ID,
      { pattern: config.sweepCron, tz: config.sweepTz },
      { name: SWEEP_JOB, data: {}, opts: SWEEP_JOB_OPTIONS },
    );
  } catch (error) {
    if (isIterationTaken(error)) {
      // Another process registered the scheduler and its next run a moment ago (processes
      // starting together, or one starting while the run is being picked up): the run exists,
      // so there is nothing left to register. Failing here would stop a worker from starting.
      logger.info(
        { scheduler: SWEEP_SCHEDULER_ID },
        "sweep's next run was already registered by another process",
      );
    } else {
      await life.close(config.shutdownTimeoutMs);
      throw error;
    }
  }

  const running = new Set<AbortController>();
  const processor = async (job: Job, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    if (job.name !== SWEEP_JOB && job.name !== HOUSEKEEPING_JOB)
      throw new UnrecoverableError(`unknown maintenance job '${job.name}'`);
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    running.add(controller);
    try {
      if (job.name === HOUSEKEEPING_JOB) return await housekeeping.run(controller.signal);
      return summariseSweep(await sweepStaleEndpoints(deps, { signal: controller.signal }));
    } finally {
      running.delete(controller);
    }
  };
  // Shares `connection` for commands; BullMQ opens its own blocking connection and closes it.
  const worker = new Worker(MAINTENANCE_QUEUE, processor, {
    connection,
    prefix: singleQueuePrefix(config, MAINTENANCE_QUEUE),
    concurrency: 1,
  });
  worker.on('error', logRepeatedErrors(logger, 'error', 'maintenance worker error'));
  worker.on('failed', (job, error) =>
    logger.error(
      { err: error, jobId: job?.id, attemptsMade: job?.attemptsMade },
      'maintenance job failed',
    ),
  );
  logger.info(
    { scheduler: SWEEP_SCHEDULER_ID, pattern: config.sweepCron, tz: config.sweepTz },
    'maintenance started',
  );

  life.add('maintenance worker', worker, (w) => w.close());
  // Closed first: a sweep stopped here fails its job, which BullMQ retries (here or in another
  // process), and the worker's close need not wait for the sweep to finish.
  life.add('running sweeps', running, (sweeps) => {
    for (const controller of sweeps) controller.abort(new Error('shutting down'));
  });
  return { close: () => life.close(config.shutdownTimeoutMs).then(() => {}) };
}

/**
 * BullMQ's upsertJobScheduler refuses (ErrorCode.SchedulerJobIdCollision, a plain Error with
 * this text) when the job of the scheduler's next run already exists and is no longer waiting,
 * e.g. created by another process's upsert a moment earlier. Only the text tells it apart.
 */
function isIterationTaken(error: unknown): boolean {
  return (
    error instanceof Error &&
    error.message.startsWith('Cannot create job scheduler iteration - job ID already exists')
  );
}
