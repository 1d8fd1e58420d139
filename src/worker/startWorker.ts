import { hostname } from 'node:os';
import { Queue, Worker } from 'bullmq';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { RetryableDeliveryError } from '../errors.js';
import { DELIVERIES_QUEUE, type DeliveryJobData } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Lifecycle } from '../lifecycle.js';
import { createLimitsRedis, createWorkerRedis, quitRedis } from '../redis.js';
import { createAddressGuard, type Resolver } from '../delivery/addressGuard.js';
import { createDeliveryProcessor } from './deliveryProcessor.js';
import { createEndpointCache } from './endpointCache.js';
import { createEndpointChanges } from './endpointChanges.js';
import { createEndpointLimits } from '../delivery/endpointLimits.js';
import { createDeliveryClient } from '../delivery/httpClient.js';
import { createPostponedDeliveries } from './postponedDeliveries.js';
import { retryDelayMs } from '../delivery/retrySchedule.js';
import { SuccessRecorder } from './successRecorder.js';
import { logRepeatedErrors } from '../repeatedErrorLog.js';

export interface WorkerDeps {
  config: Config;
  logger: Logger;
  dbClient: DbClient;
  metrics?: Metrics;
  /** DNS resolver for the address guard; tests inject one (this machine has no outside DNS). */
  resolve?: Resolver;
}

export interface RunningWorker {
  worker: Worker<DeliveryJobData>;
  recorder: SuccessRecorder;
  /**
   * Stops taking jobs, waits for those in flight (each bounded by the delivery timeout), flushes
   * recorded outcomes, closes connections. Safe to call twice.
   */
  close(): Promise<void>;
}

/** How much longer than the delivery timeout a delivery's place under the endpoint's cap is held. */
const LEASE_MARGIN_MS = 5000;

/** Starts a BullMQ worker on the `deliveries` queue. */
export function startWorker(deps: WorkerDeps): RunningWorker {
  const { config, logger, dbClient, metrics } = deps;
  // Resources are made in the reverse of the order they close in: the BullMQ worker first (it
  // waits for the deliveries in flight), then the recorder's flush, while the connections those
  // use are still open.
  const life = new Lifecycle(logger);
  const limitsRedis = life.add(
    'endpoint limits redis',
    createLimitsRedis(config.redisUrl, 'hookfleet:endpoint-limits'),
    quitRedis,
  );
  const connection = life.add(
    'worker redis',
    createWorkerRedis(config.redisUrl, 'hookfleet:worker'),
    quitRedis,
  );
  // On the limits' connection: a Queue on a connection it does not own opens none of its own.
  const postponedQueue = new Queue(DELIVERIES_QUEUE, {
    connection: limitsRedis,
    prefix: config.queuePrefix,
  });
  postponedQueue.on('error', (error) => logger.debug({ err: error }, 'deliveries queue error'));
  const postponed = life.add(
    'postponed deliveries',
    createPostponedDeliveries(postponedQueue, logger),
    (p) => p.settled(),
  );
  const limits = createEndpointLimits({
    redis: limitsRedis,
    prefix: config.queuePrefix,
    maxInFlight: config.endpointMaxInFlight,
    failureThreshold: config.circuitFailures,
    cooldownMs: config.circuitCooldownMs,
    // An admitted delivery ends within the delivery timeout; the margin covers a slow release.
    leaseMs: config.deliveryTimeoutMs + LEASE_MARGIN_MS,
    logger,
    metrics,
    onCircuitClosed: (_endpointId, jobIds) => postponed.promote(jobIds),
  });
  const guard = createAddressGuard({
    allowCidrs: config.allowCidrs,
    ...(deps.resolve && { resolve: deps.resolve }),
  });
  const client = life.add(
    'delivery client',
    createDeliveryClient({ timeoutMs: config.deliveryTimeoutMs, guard }),
    (c) => c.close(),
  );
  const changes = life.add(
    'endpoint changes',
    createEndpointChanges({
      databaseUrl: dbClient.url,
      sql: dbClient.sql,
      logger,
      metrics,
      // Four pings per cache bound: a row stays trusted while the last answered ping is younger
      // than the bound, so one slow or lost answer does not send every delivery back to PostgreSQL.
      pingMs: Math.max(50, Math.floor(config.endpointCacheMs / 4)),
    }),
    (c) => c.close(),
  );
  const recorder = life.add(
    'success recorder',
    new SuccessRecorder({ sql: dbClient.sql, logger, metrics, flushMs: config.recorderFlushMs }),
    (r) => r.close(config.shutdownTimeoutMs),
  );
  const processor = createDeliveryProcessor({
    endpoints: createEndpointCache(dbClient.db, {
      ttlMs: config.endpointCacheMs,
      changes,
      metrics,
    }),
    client,
    limits,
    recorder,
    logger,
    metrics,
    retryScheduleMs: config.retryScheduleMs,
  });
  const worker = new Worker<DeliveryJobData>(DELIVERIES_QUEUE, processor, {
    connection,
    prefix: config.queuePrefix,
    concurrency: config.concurrency,
    // A killed worker's deliveries go back to the queue once their lock expires and a stalled-job
    // check (run by every live worker) sees it; both are settings so tests and impatient fleets can
    // shorten the takeover (issue #7).
    lockDuration: config.lockDurationMs,
    stalledInterval: config.stalledIntervalMs,
    // Shown as each job's processedBy in Bull Board: which process delivered it.
    name: `${hostname()}:${process.pid}`,
    settings: {
      backoffStrategy: (attemptsMade, _type, error) => {
        const retryAfterMs =
          error instanceof RetryableDeliveryError ? error.retryAfterMs : undefined;
        // A failure outside the schedule (an unexpected error; an unreachable PostgreSQL postpones the
        // delivery instead, see deliveryProcessor.ts) waits as long as the last step.
        return (
          retryDelayMs(config.retryScheduleMs, attemptsMade, retryAfterMs) ??
          config.retryScheduleMs[config.retryScheduleMs.length - 1]!
        );
      },
    },
  });
  worker.on('error', logRepeatedErrors(logger, 'error', 'worker error'));

  life.add('worker', worker, (w) => w.close());
  // The two steps that may wait: the deliveries in flight (each bounded by the delivery timeout)
  // and the recorder's flush (bounded by the shutdown timeout); the others are quick.
  const close = () =>
    life.close(config.deliveryTimeoutMs + config.shutdownTimeoutMs).then(() => {});
  logger.info({ concurrency: config.concurrency, prefix: config.queuePrefix }, 'worker started');
  return { worker, recorder, close };
}
