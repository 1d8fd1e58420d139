/**
 * The maintenance queue's frequent job, every HOOKFLEET_HOUSEKEEPING_INTERVAL_MS (1 min): the
 * reconciler (messages with no job in Redis, unqueuedMessages.ts), final attempts for jobs BullMQ
 * failed without one (unseenFailures.ts), then expired previous secrets cleared and ended portal
 * sessions deleted. Every part works in bounded batches, so one run is a
 * few short statements however much has piled up; what is left waits for the next run.
 *
 * Registered beside the daily sweep (maintenance.ts) as a job scheduler of its own, with the same
 * guarantee: one job per period, run by one process.
 */
import type { Queue } from 'bullmq';
import { closeShardedQueue, openShardedQueue, shardCount } from '../queueShards.js';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { clearExpiredPreviousSecrets } from '../db/expiredSecrets.js';
import { pruneEndedPortalSessions } from '../db/portalSessions.js';
import { DELIVERIES_QUEUE, MAINTENANCE_QUEUE, MESSAGES_QUEUE } from '../jobs.js';
import { Lifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { QueueBackend } from '../queueBackend.js';
import { reconcileMessages, type ReconcileResult } from './unqueuedMessages.js';
import { recordFailedJobs } from './unseenFailures.js';

/** Id of the housekeeping job scheduler; fixed, so every process upserts the same one. */
export const HOUSEKEEPING_SCHEDULER_ID = 'housekeeping';
/** Name of its jobs on the maintenance queue. */
export const HOUSEKEEPING_JOB = 'housekeeping';

/** Rows per statement when clearing secrets and pruning sessions, and statements per run. */
const BATCH_SIZE = 1000;
const MAX_BATCHES_PER_RUN = 20;

const HOUSEKEEPING_JOB_OPTIONS = {
  // The next run comes within a minute and does the same; a failed one is only logged.
  attempts: 1,
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 100 },
} as const;

/** What a housekeeping job stores as its return value (shown in Bull Board). */
export interface HousekeepingResult extends ReconcileResult {
  /** Deliveries in BullMQ's failed set given the final attempt their worker never wrote. */
  failuresRecorded: number;
  secretsCleared: number;
  portalSessionsPruned: number;
  durationMs: number;
}

export interface HousekeepingDeps {
  config: Config;
  logger: Logger;
  dbClient: DbClient;
  /** Where the queues live; the Redis backend also holds the scans' cursors. */
  backend: QueueBackend;
}

export interface Housekeeping {
  /** Upserts the job scheduler on the maintenance queue. */
  schedule(queue: Queue): Promise<void>;
  /** One run; stops between two statements once `signal` aborts. */
  run(signal?: AbortSignal): Promise<HousekeepingResult>;
  close(): Promise<void>;
}

export function createHousekeeping(deps: HousekeepingDeps): Housekeeping {
  const { config, dbClient, logger, backend } = deps;
  // Both scans below look for what Redis acknowledged and then lost, and keep their cursors in
  // Redis; BullMQ's PostgreSQL backend commits a job or fails, so trial mode needs neither.
  const connection = backend.kind === 'redis' ? backend.redis('fan-out') : undefined;
  const life = new Lifecycle(logger);
  const open = (name: string) =>
    life
      .add(
        `${name} queue (housekeeping)`,
        openShardedQueue(backend, config, name, shardCount(backend, config), 'queues'),
        closeShardedQueue,
      )
      .on('error', (error) => logger.debug({ err: error }, 'housekeeping queue error'));
  const messagesQueue = open(MESSAGES_QUEUE);
  /** Where the scans keep their cursors, beside the maintenance queue's own keys. */
  const maintenanceKey = `${config.queuePrefix}:${MAINTENANCE_QUEUE}`;
  const deliveriesQueue = open(DELIVERIES_QUEUE);
  return {
    async schedule(queue) {
      await queue.upsertJobScheduler(
        HOUSEKEEPING_SCHEDULER_ID,
        { every: config.housekeepingIntervalMs },
        { name: HOUSEKEEPING_JOB, data: {}, opts: HOUSEKEEPING_JOB_OPTIONS },
      );
    },
    async run(signal) {
      const started = performance.now();
      const reconciled = await reconcileMessages({
        sql: dbClient.sql,
        messagesQueue,
        deliveriesQueue,
        redis: connection,
        queuePrefix: config.queuePrefix,
        cursorKey: `${maintenanceKey}:reconciler-cursor`,
        logger,
      });
      signal?.throwIfAborted();
      const failuresRecorded =
        connection === undefined
          ? 0
          : await recordFailedJobs({
              sql: dbClient.sql,
              redis: connection,
              queues: [...deliveriesQueue.shards, ...messagesQueue.shards],
              // A shard's own cursor: `deliveries` on one node with one shard, `{deliveries-3}` else.
              cursorKey: (queue) =>
                `${maintenanceKey}:failed-cursor:${
                  queue.opts.prefix === config.queuePrefix
                    ? queue.name
                    : (queue.opts.prefix ?? '').slice(config.queuePrefix.length + 1)
                }`,
              deliveriesOf: (messageId) => deliveriesQueue.forMessage(messageId),
            });
      if (failuresRecorded > 0) {
        logger.warn(
          { failuresRecorded },
          'recorded the final attempt of failed jobs that had none (failed for stalling, or a lost row)',
        );
      }
      signal?.throwIfAborted();
      const secretsCleared = await inBatches(signal, () =>
        clearExpiredPreviousSecrets(dbClient.sql, BATCH_SIZE),
      );
      const portalSessionsPruned = await inBatches(signal, () =>
        pruneEndedPortalSessions(dbClient.sql, BATCH_SIZE),
      );
      return {
        ...reconciled,
        failuresRecorded,
        secretsCleared,
        portalSessionsPruned,
        durationMs: Math.round(performance.now() - started),
      };
    },
    close: () => life.close(config.shutdownTimeoutMs).then(() => {}),
  };
}

/** Runs `batch` until it handles fewer than BATCH_SIZE rows, at most MAX_BATCHES_PER_RUN times. */
async function inBatches(
  signal: AbortSignal | undefined,
  batch: () => Promise<number>,
): Promise<number> {
  let total = 0;
  for (let round = 0; round < MAX_BATCHES_PER_RUN; round++) {
    signal?.throwIfAborted();
    const done = await batch();
    total += done;
    if (done < BATCH_SIZE) break;
  }
  return total;
}
