import { hostname } from 'node:os';
import type { Worker } from 'bullmq';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { RetryableDeliveryError } from '../errors.js';
import {
  DELIVERIES_QUEUE,
  FINISHED_JOBS_KEPT,
  MESSAGES_QUEUE,
  type DeliveryJobData,
  type MessageJobData,
} from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Lifecycle } from '../lifecycle.js';
import { createQueueBackend, type QueueBackend } from '../queueBackend.js';
import {
  closeShardedQueue,
  openShardedQueue,
  recordQueueShards,
  shardCount,
  shardPrefix,
} from '../queueShards.js';
import { createAddressGuard, type Resolver } from '../delivery/addressGuard.js';
import { createAttemptSlots } from './attemptSlots.js';
import { createDeliveryAttempt } from './deliveryAttempt.js';
import { createDeliveryEvents } from './deliveryEvents.js';
import { createDeliveryFollowUps } from './deliveryFollowUps.js';
import { createDeliveryProcessor } from './deliveryProcessor.js';
import { createFanOutProcessor } from './fanOutProcessor.js';
import { fanOutProgressOn } from './fanOutProgress.js';
import { createMessageBodies } from './messageBodies.js';
import { createMessageLoader } from './messageLoader.js';
import { createEndpointCache } from './endpointCache.js';
import { createEndpointChanges } from './endpointChanges.js';
import { createDeliveriesSending } from '../delivery/deliveriesSending.js';
import { createEndpointLimits, type CircuitStates } from '../delivery/endpointLimits.js';
import { endpointLimitsStoreOn } from '../delivery/localEndpointLimits.js';
import { ownerQueueLeaver } from '../delivery/ownerQueue.js';
import { createDeliveryClient } from '../delivery/httpClient.js';
import { createOperatorEvents } from '../delivery/operatorEvents.js';
import { createDeliveryFailureEvents } from './deliveryFailureEvents.js';
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
  /** Where the queues live. Default: Redis (REDIS_URL), on connections of the worker's own. */
  backend?: QueueBackend;
}

export interface RunningWorker {
  /** The `deliveries` queue's worker of the first shard served (the only one with one shard). */
  worker: Worker<DeliveryJobData>;
  /** The `messages` queue's worker (fan-outs) of the first shard served. */
  fanOutWorker: Worker<MessageJobData>;
  /**
   * Resolves with the shards served once the largest number of shards ever configured has been
   * read from Redis and a worker started on each (at once with HOOKFLEET_WORKER_SHARDS).
   */
  shardsServed(): Promise<readonly number[]>;
  recorder: SuccessRecorder;
  /** The circuit breaker's view of endpoints as this worker's limits keep it (the api shows it). */
  circuitStates: CircuitStates;
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
  // Closed last: the queues and workers below close first (they share its connections).
  const backend =
    deps.backend ??
    life.add('queue backend', createQueueBackend(config, 'redis'), (b) => b.close());
  // Shards written to: HOOKFLEET_QUEUE_SHARDS on Redis, one on PostgreSQL (queueShards.ts).
  const shards = shardCount(backend, config);
  // The queues a worker adds to share one connection (queueBackend.ts, role `queues`);
  // a Queue on a connection it does not own opens none of its own. `deliveries` takes the
  // deliveries a closing circuit hands back and the fan-outs' follow-ups (retries, guards).
  const deliveriesQueue = life
    .add(
      'deliveries queue',
      openShardedQueue<DeliveryJobData>(backend, config, DELIVERIES_QUEUE, shards, 'queues'),
      closeShardedQueue,
    )
    .on('error', (error) => logger.debug({ err: error }, 'deliveries queue error'));
  const postponed = life.add(
    'postponed deliveries',
    createPostponedDeliveries(deliveriesQueue, logger),
    (p) => p.settled(),
  );
  // Closed after the workers and the attempts they handed off: gives back the places it kept.
  const limits = life.add(
    'endpoint limits',
    createEndpointLimits({
      store: endpointLimitsStoreOn(backend, config.queuePrefix),
      prefix: config.queuePrefix,
      maxInFlight: config.endpointMaxInFlight,
      failureThreshold: config.circuitFailures,
      cooldownMs: config.circuitCooldownMs,
      // An admitted delivery ends within the delivery timeout; the margin covers a slow release.
      leaseMs: config.deliveryTimeoutMs + LEASE_MARGIN_MS,
      // A kept place's lease still covers a whole attempt, with half the margin to spare.
      placeReuseMs: LEASE_MARGIN_MS / 2,
      logger,
      metrics,
      onCircuitClosed: (_endpointId, jobIds) => postponed.promote(jobIds),
    }),
    (l) => l.close(),
  );
  const guard = createAddressGuard({
    allowCidrs: config.allowCidrs,
    ...(deps.resolve && { resolve: deps.resolve }),
  });
  const client = life.add(
    'delivery client',
    createDeliveryClient({ timeoutMs: config.deliveryTimeoutMs, guard }),
    (c) => c.close(),
  );
  // The operator's endpoint may also reach HOOKFLEET_OPERATOR_ALLOW_CIDRS, which customer
  // endpoints may not: it has a client (and an address guard) of its own.
  const operatorClient =
    config.operatorWebhookUrl === undefined
      ? undefined
      : life.add(
          'operator delivery client',
          createDeliveryClient({
            timeoutMs: config.deliveryTimeoutMs,
            guard: createAddressGuard({
              allowCidrs: [...config.allowCidrs, ...config.operatorAllowCidrs],
              allowCidrsSetting: 'HOOKFLEET_ALLOW_CIDRS or HOOKFLEET_OPERATOR_ALLOW_CIDRS',
              ...(deps.resolve && { resolve: deps.resolve }),
            }),
            connectionsPerOrigin: 1,
          }),
          (c) => c.close(),
        );
  // Operational events (an endpoint disabled by a 410, recovered, a delivery exhausted) are
  // messages: their fan-outs go on the `messages` queue, through this process's own workers.
  const operatorQueue = life
    .add(
      'operator events queue',
      openShardedQueue(backend, config, MESSAGES_QUEUE, shards, 'queues'),
      closeShardedQueue,
    )
    .on('error', (error) => logger.debug({ err: error }, 'messages queue error'));
  const operatorEvents = createOperatorEvents({
    sql: dbClient.sql,
    queue: operatorQueue,
    config,
    logger,
  });
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
    new SuccessRecorder({
      sql: dbClient.sql,
      logger,
      metrics,
      flushMs: config.recorderFlushMs,
      onRecovered: (recovered) =>
        void operatorEvents.publish(
          recovered.map((endpoint) => ({
            type: 'endpoint.recovered',
            data: {
              endpointId: endpoint.id,
              ownerId: endpoint.ownerId,
              url: endpoint.url,
              failingSince: endpoint.failingSince.toISOString(),
              recoveredAt: endpoint.lastSuccessAt.toISOString(),
            },
          })),
        ),
    }),
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
    operatorClient,
    failures: createDeliveryFailureEvents({
      db: dbClient.db,
      events: operatorEvents,
      logger,
      metrics,
    }),
    limits,
    ...(backend.kind === 'redis' && {
      sending: createDeliveriesSending({
        redis: backend.redis('limits'),
        prefix: config.queuePrefix,
        leaseMs: config.deliveryTimeoutMs + LEASE_MARGIN_MS,
        logger,
      }),
    }),
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
  const events = life.add(
    'delivery events',
    createDeliveryEvents({
      enabled: config.deliveryEvents,
      backend,
      settings: config,
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
      followUps: createDeliveryFollowUps(deliveriesQueue),
      // Owners' places are counted on Redis only; trial mode's producer counts none.
      ...(backend.kind === 'redis' && {
        leaveOwnerQueue: ownerQueueLeaver(backend.redis('fan-out'), config.queuePrefix),
      }),
      progress: fanOutProgressOn(backend, config.queuePrefix),
      events,
      logger,
      retryScheduleMs: config.retryScheduleMs,
      deliveryTimeoutMs: config.deliveryTimeoutMs,
    }),
    // Attempts fan-outs handed off are still sending (each within the delivery timeout).
    (f) => f.settled(),
  );
  const deliveryWorkerOptions = {
    connectionName: 'worker',
    ...FINISHED_JOBS_KEPT,
    // A killed worker's deliveries go back to the queue once their lock expires and a stalled-job
    // check (run by every live worker) sees it; both are settings so tests and impatient fleets can
    // shorten the takeover.
    lockDuration: config.lockDurationMs,
    stalledInterval: config.stalledIntervalMs,
    // Shown as each job's processedBy in Bull Board: which process delivered it.
    name: `${hostname()}:${process.pid}`,
    settings: {
      backoffStrategy: (
        attemptsMade: number,
        _type?: string,
        error?: Error,
        job?: { data: unknown },
      ) => {
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
  };
  // As many fan-outs as slots: a fan-out to one endpoint needs one; the slots bound the HTTP.
  const fanOutWorkerOptions = {
    connectionName: 'fan-out',
    ...FINISHED_JOBS_KEPT,
    lockDuration: Math.min(config.lockDurationMs, MESSAGE_LOCK_MS),
    stalledInterval: Math.min(config.stalledIntervalMs, MESSAGE_STALLED_INTERVAL_MS),
    maxStalledCount: MESSAGE_MAX_STALLED,
    name: `${hostname()}:${process.pid}`,
  };
  const served = new Map<
    number,
    { worker: Worker<DeliveryJobData>; fanOutWorker: Worker<MessageJobData> }
  >();
  const serve = (shard: number) => {
    if (served.has(shard) || stopping) return;
    // One connection per worker; a shard's name shows in CLIENT LIST beyond shard 0.
    const suffix = shard === 0 ? '' : `:${shard}`;
    const worker = backend.worker<DeliveryJobData>(DELIVERIES_QUEUE, processor, {
      ...deliveryWorkerOptions,
      connectionName: `worker${suffix}`,
      concurrency: perShard,
      prefix: shardPrefix(config, DELIVERIES_QUEUE, shard),
    });
    worker.on('error', logRepeatedErrors(logger, 'error', 'worker error'));
    const fanOutWorker = backend.worker<MessageJobData>(MESSAGES_QUEUE, fanOut, {
      ...fanOutWorkerOptions,
      connectionName: `fan-out${suffix}`,
      concurrency: perShard,
      prefix: shardPrefix(config, MESSAGES_QUEUE, shard),
    });
    fanOutWorker.on('error', logRepeatedErrors(logger, 'error', 'fan-out worker error'));
    served.set(shard, { worker, fanOutWorker });
  };
  // PostgreSQL has one shard, whatever HOOKFLEET_WORKER_SHARDS says.
  const configured =
    backend.kind === 'postgres'
      ? [0]
      : (config.workerShards ?? Array.from({ length: shards }, (_, n) => n));
  // HOOKFLEET_CONCURRENCY is per process: split over the shards (messages hash evenly over them).
  const perShard = Math.max(1, Math.ceil(config.concurrency / configured.length));
  for (const shard of configured) serve(shard);
  const first = served.get(configured[0]!)!;

  // A stopping fan-out starts nothing new, finishes what is in flight and goes back to the queue.
  life.add('workers', served, async (workers) => {
    stopping = true;
    await Promise.all(
      [...workers.values()].flatMap((w) => [w.fanOutWorker.close(), w.worker.close()]),
    );
  });
  const shardsServed = watchRecordedShards({
    config,
    logger,
    backend,
    serve,
    served: () => [...served.keys()].sort((a, b) => a - b),
    life,
  });
  // The steps that may wait: the fan-outs and deliveries in flight and the attempts handed off
  // (each bounded by the delivery timeout) and the recorder's flush (by the shutdown timeout).
  const close = () =>
    life.close(config.deliveryTimeoutMs + config.shutdownTimeoutMs).then(() => {});
  logger.info(
    { concurrency: config.concurrency, prefix: config.queuePrefix, shards: configured },
    'worker started',
  );
  return {
    worker: first.worker,
    fanOutWorker: first.fanOutWorker,
    shardsServed,
    recorder,
    circuitStates: limits.circuitStates,
    close,
  };
}

/** How often a worker looks for shards added since it started (a producer's larger setting). */
const SHARD_CHECK_MS = 10_000;

/**
 * Without HOOKFLEET_WORKER_SHARDS, a worker serves every shard up to the largest number ever
 * recorded (queueShards.ts): it records its own setting, serves what the record adds, and looks
 * again every SHARD_CHECK_MS, so shards a producer started writing to are served without a
 * restart and shards a smaller setting left behind keep draining. On PostgreSQL (one shard)
 * nothing is recorded.
 */
function watchRecordedShards(deps: {
  config: Config;
  logger: Logger;
  backend: QueueBackend;
  serve: (shard: number) => void;
  served: () => number[];
  life: Lifecycle;
}): () => Promise<readonly number[]> {
  const { config, logger, backend } = deps;
  if (config.workerShards !== undefined || backend.kind === 'postgres') {
    const fixed = deps.served();
    return () => Promise.resolve(fixed);
  }

  const check = async (): Promise<readonly number[]> => {
    const before = deps.served().length;
    const recorded = await recordQueueShards(backend, config, 'limits');
    for (let shard = 0; shard < recorded; shard++) deps.serve(shard);
    const now = deps.served();
    if (now.length > before) logger.info({ shards: now }, 'serving queue shards');
    return now;
  };
  // Retried until it succeeds: Redis may be down at start.
  const untilChecked = async (): Promise<readonly number[]> => {
    for (;;) {
      try {
        return await check();
      } catch (error) {
        logger.debug({ err: error }, 'could not read the recorded queue shards');
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
      }
    }
  };
  const firstCheck = untilChecked();
  const timer = setInterval(() => {
    check().catch((error: unknown) =>
      logger.debug({ err: error }, 'could not read the recorded queue shards'),
    );
  }, SHARD_CHECK_MS).unref();
  deps.life.add('queue shard check', timer, clearInterval);
  return () => firstCheck;
}
