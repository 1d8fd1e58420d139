import { hostname } from 'node:os';
import { Queue, Worker } from 'bullmq';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { RetryableDeliveryError } from '../errors.js';
import {
  DELIVERIES_QUEUE,
  MESSAGES_QUEUE,
  type DeliveryJobData,
  type MessageJobData,
} from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Lifecycle } from '../lifecycle.js';
import { createFanOutRedis, createLimitsRedis, createWorkerRedis, quitRedis } from '../redis.js';
import { createAddressGuard, type Resolver } from '../delivery/addressGuard.js';
import { createAttemptSlots } from './attemptSlots.js';
import { createDeliveryAttempt } from './deliveryAttempt.js';
import { createDeliveryEvents } from './deliveryEvents.js';
import { createDeliveryFollowUps } from './deliveryFollowUps.js';
import { createDeliveryProcessor } from './deliveryProcessor.js';
import { createFanOutProcessor } from './fanOutProcessor.js';
import { createFanOutProgress } from './fanOutProgress.js';
import { createMessageBodies } from './messageBodies.js';
import { createMessageLoader } from './messageLoader.js';
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
  /** The `deliveries` queue's worker. */
  worker: Worker<DeliveryJobData>;
  /** The `messages` queue's worker (fan-outs). */
  fanOutWorker: Worker<MessageJobData>;
  recorder: SuccessRecorder;
  /**
   * Stops taking jobs, waits for those in flight (each bounded by the delivery timeout), flushes
   * recorded outcomes, closes connections. Safe to call twice.
   */
  close(): Promise<void>;
}

/** How much longer than the delivery timeout a delivery's place under the endpoint's cap is held. */
const LEASE_MARGIN_MS = 5000;

/**
/**
 * A fan-out's lock: a killed worker's fan-outs are taken over within MESSAGE_LOCK_MS +
 * MESSAGE_STALLED_INTERVAL_MS (15 s), or sooner when HOOKFLEET_LOCK_DURATION_MS and
 * HOOKFLEET_STALLED_INTERVAL_MS are shorter. A fan-out holds many deliveries, so it is worth a
 * quicker takeover than one delivery (30 s + 2 x 30 s); its lock is renewed every half of this
 * while it runs, which an event loop blocked for 5 s would miss (the fan-out then runs twice,
 * skipping what the first run finished).
 */
const MESSAGE_LOCK_MS = 10_000;
const MESSAGE_STALLED_INTERVAL_MS = 5000;
/**
 * Takeovers a fan-out survives before it fails (BullMQ's default is 1). Each run skips what the
 * earlier ones finished; failing the job would leave the rest of its deliveries unsent.
 */
const MESSAGE_MAX_STALLED = 10;

/** Starts BullMQ workers on the `messages` and `deliveries` queues, sharing one set of attempt slots. */
export function startWorker(deps: WorkerDeps): RunningWorker {
  const { config, logger, dbClient, metrics } = deps;
  // Resources are made in the reverse of the order they close in: the BullMQ workers first (they
  // wait for the fan-outs and deliveries in flight), then the attempts fan-outs handed off, then
  // the recorder's flush, while the connections those use are still open.
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
  const fanOutConnection = life.add(
    'fan-out worker redis',
    createWorkerRedis(config.redisUrl, 'hookfleet:fan-out'),
    quitRedis,
  );
  const fanOutRedis = life.add(
    'fan-out follow-ups redis',
    createFanOutRedis(config.redisUrl, 'hookfleet:fan-out-follow-ups'),
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
  const slots = createAttemptSlots(config.concurrency);
  const attempt = createDeliveryAttempt({
    endpoints: createEndpointCache(dbClient.db, {
      ttlMs: config.endpointCacheMs,
      changes,
      metrics,
    }),
    client,
    limits,
    slots,
    recorder,
    logger,
    metrics,
    retryScheduleMs: config.retryScheduleMs,
  });
  const processor = createDeliveryProcessor({
    attempt,
    bodies: createMessageBodies(dbClient.sql),
  });
  const followUpQueue = life.add(
    'follow-up queue',
    new Queue<DeliveryJobData>(DELIVERIES_QUEUE, {
      connection: fanOutRedis,
      prefix: config.queuePrefix,
    }),
    (q) => q.close(),
  );
  followUpQueue.on('error', (error) => logger.debug({ err: error }, 'deliveries queue error'));
  const events = life.add(
    'delivery events',
    createDeliveryEvents({
      enabled: config.deliveryEvents,
      redis: fanOutRedis,
      prefix: config.queuePrefix,
      logger,
    }),
    (e) => e.close(),
  );
  let stopping = false;
  const fanOut = life.add(
    'handed-off attempts',
    createFanOutProcessor({
      stopping: () => stopping,
      loadMessage: createMessageLoader(dbClient.sql),
      attempt,
      slots,
      followUps: createDeliveryFollowUps(followUpQueue),
      progress: createFanOutProgress(fanOutRedis, config.queuePrefix),
      events,
      logger,
      retryScheduleMs: config.retryScheduleMs,
      deliveryTimeoutMs: config.deliveryTimeoutMs,
    }),
    // Attempts fan-outs handed off are still sending (each within the delivery timeout).
    (f) => f.settled(),
  );
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
      backoffStrategy: (attemptsMade, _type, error, job) => {
        // Worked out by the attempt from the endpoint's own schedule (deliveryProcessor.ts).
        if (error instanceof RetryableDeliveryError && error.retryInMs !== undefined) {
          return error.retryInMs;
        }
        const retryAfterMs =
          error instanceof RetryableDeliveryError ? error.retryAfterMs : undefined;
        // A delivery job after a fan-out's failed first attempt continues the schedule from there.
        const before = (job?.data as DeliveryJobData | undefined)?.attemptsBefore ?? 0;
        // A failure outside the schedule (an unexpected error; an unreachable PostgreSQL postpones the
        // delivery instead, see deliveryProcessor.ts) waits as long as the last step.
        return (
          retryDelayMs(config.retryScheduleMs, before + attemptsMade, retryAfterMs) ??
          config.retryScheduleMs[config.retryScheduleMs.length - 1]!
        );
      },
    },
  });
  worker.on('error', logRepeatedErrors(logger, 'error', 'worker error'));
  // As many fan-outs as slots: a fan-out to one endpoint needs one; the slots bound the HTTP.
  const fanOutWorker = new Worker<MessageJobData>(MESSAGES_QUEUE, fanOut, {
    connection: fanOutConnection,
    prefix: config.queuePrefix,
    concurrency: config.concurrency,
    lockDuration: Math.min(config.lockDurationMs, MESSAGE_LOCK_MS),
    stalledInterval: Math.min(config.stalledIntervalMs, MESSAGE_STALLED_INTERVAL_MS),
    maxStalledCount: MESSAGE_MAX_STALLED,
    name: `${hostname()}:${process.pid}`,
  });
  fanOutWorker.on('error', logRepeatedErrors(logger, 'error', 'fan-out worker error'));

  // A stopping fan-out starts nothing new, finishes what is in flight and goes back to the queue.
  life.add('workers', { fanOutWorker, worker }, async (w) => {
    stopping = true;
    await Promise.all([w.fanOutWorker.close(), w.worker.close()]);
  });
  // The steps that may wait: the fan-outs and deliveries in flight and the attempts handed off
  // (each bounded by the delivery timeout) and the recorder's flush (by the shutdown timeout).
  const close = () =>
    life.close(config.deliveryTimeoutMs + config.shutdownTimeoutMs).then(() => {});
  logger.info({ concurrency: config.concurrency, prefix: config.queuePrefix }, 'worker started');
  return { worker, fanOutWorker, recorder, close };
}
