/**
 * Scheduled work on the `maintenance` queue: the daily stale-endpoint sweep, the hourly failing
 * sweep (worker/failingSweep.ts), and housekeeping every minute (housekeeping.ts). The sweeps'
 * operational events go out as messages on the `messages` queue (delivery/operatorEvents.ts).
 *
 * Every worker process (and `hookfleet start`) upserts the same job scheduler under a fixed id.
 * BullMQ keeps one scheduler per id and gives each run a deterministic job id
 * (`repeat:<scheduler id>:<time>`), so however many processes register it, each period yields
 * exactly one job, which exactly one of them runs.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { MAINTENANCE_QUEUE, MESSAGES_QUEUE } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Lifecycle } from '../lifecycle.js';
import { createQueueBackend, type QueueBackend } from '../queueBackend.js';
import {
  closeShardedQueue,
  openShardedQueue,
  shardCount,
  singleQueuePrefix,
} from '../queueShards.js';
import type { Resolver } from '../delivery/addressGuard.js';
import { summariseSweep, sweepStaleEndpoints } from './staleSweep.js';
import { createStaleProbes } from './staleProbes.js';
import { createOperatorEvents } from '../delivery/operatorEvents.js';
import { databaseNow } from '../db/staleEndpoints.js';
import { sweepFailingEndpoints } from './failingSweep.js';
import { DEFAULT_SWEEP_BATCH_SIZE } from './staleSweep.js';
import { logRepeatedErrors } from '../repeatedErrorLog.js';
import { createHousekeeping, HOUSEKEEPING_JOB } from './housekeeping.js';

/** Id of the job scheduler that runs the sweep; fixed, so every process upserts the same one. */
export const SWEEP_SCHEDULER_ID = 'sweep-stale-endpoints';
/** Name of the sweep's jobs on the maintenance queue. */
export const SWEEP_JOB = 'sweep-stale-endpoints';
/** Id of the job scheduler of the failing sweep, and the name of its jobs. */
export const FAILING_SWEEP_SCHEDULER_ID = 'sweep-failing-endpoints';
export const FAILING_SWEEP_JOB = 'sweep-failing-endpoints';
/** Hourly: an endpoint is disabled at most an hour past its failing threshold. */
const FAILING_SWEEP_PATTERN = '7 * * * *';

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
  /** Where the queues live. Default: Redis (REDIS_URL), on connections of its own. */
  backend?: QueueBackend | undefined;
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
  failingDisabled: number;
  failingWarned: number;
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
  // Closed last: the queue and worker below share its connections.
  const backend =
    deps.backend ??
    life.add('queue backend', createQueueBackend(config, 'redis'), (b) => b.close());
  const queue = life.add(
    'maintenance queue',
    backend.queue(MAINTENANCE_QUEUE, 'queues', singleQueuePrefix(config, MAINTENANCE_QUEUE)),
    (q) => q.close(),
  );
  // Without a listener BullMQ prints each reconnection error, with its stack, on stderr.
  queue.on('error', (error) => logger.debug({ err: error }, 'maintenance queue error'));
  // Operational events are messages: their fan-outs go on the `messages` queue.
  const messagesQueue = life
    .add(
      'operator events queue',
      openShardedQueue(backend, config, MESSAGES_QUEUE, shardCount(backend, config), 'queues'),
      closeShardedQueue,
    )
    .on('error', (error) => logger.debug({ err: error }, 'messages queue error'));
  const events = createOperatorEvents({
    sql: deps.dbClient.sql,
    queue: messagesQueue,
    config,
    logger,
  });
  // Pings to idle stale endpoints are messages too, on the same queue.
  const probes = createStaleProbes({ sql: deps.dbClient.sql, queue: messagesQueue, logger });
  const housekeeping = life.add('housekeeping', createHousekeeping({ ...deps, backend }), (h) =>
    h.close(),
  );
  try {
    // A run another process registered a moment ago is as good as ours (see below).
    await housekeeping.schedule(queue).catch((error: unknown) => {
      if (!isIterationTaken(error)) throw error;
    });
  } catch (error) {
    await life.close(config.shutdownTimeoutMs);
    throw error;
  }
  const schedulers = [
    {
      id: SWEEP_SCHEDULER_ID,
      repeat: { pattern: config.sweepCron, tz: config.sweepTz },
      name: SWEEP_JOB,
    },
    {
      id: FAILING_SWEEP_SCHEDULER_ID,
      repeat: { pattern: FAILING_SWEEP_PATTERN, tz: 'UTC' },
      name: FAILING_SWEEP_JOB,
    },
  ];
  for (const scheduler of schedulers) {
    try {
      await queue.upsertJobScheduler(scheduler.id, scheduler.repeat, {
        name: scheduler.name,
        data: {},
        opts: SWEEP_JOB_OPTIONS,
      });
    } catch (error) {
      if (isIterationTaken(error)) {
        // Another process registered the scheduler and its next run a moment ago (processes
        // starting together, or one starting while the run is being picked up): the run exists,
        // so there is nothing left to register. Failing here would stop a worker from starting.
        logger.info(
          { scheduler: scheduler.id },
          "scheduler's next run was already registered by another process",
        );
      } else {
        await life.close(config.shutdownTimeoutMs);
        throw error;
      }
    }
  }

  const running = new Set<AbortController>();
  const processor = async (job: Job, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    if (job.name === FAILING_SWEEP_JOB) {
      return sweepFailingEndpoints(
        { config, dbClient: deps.dbClient, events, metrics: deps.metrics },
        { now: await databaseNow(deps.dbClient.sql), batchSize: DEFAULT_SWEEP_BATCH_SIZE },
      );
    }
    if (job.name !== SWEEP_JOB && job.name !== HOUSEKEEPING_JOB)
      throw new UnrecoverableError(`unknown maintenance job '${job.name}'`);
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    running.add(controller);
    try {
      if (job.name === HOUSEKEEPING_JOB) return await housekeeping.run(controller.signal);
      return summariseSweep(
        await sweepStaleEndpoints({ ...deps, events, probes }, { signal: controller.signal }),
      );
    } finally {
      running.delete(controller);
    }
  };
  const worker = backend.worker(MAINTENANCE_QUEUE, processor, {
    connectionName: 'maintenance',
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
