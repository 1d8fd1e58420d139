import { QueueEvents } from 'bullmq';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { Producer } from '../../src/producer/producer.js';
import { startWorker, type RunningWorker } from '../../src/worker/startWorker.js';
import { DELIVERIES_QUEUE, deliveryJobId } from '../../src/jobs.js';
import { shardPrefix } from '../../src/queueShards.js';
import { createWorkerRedis } from '../../src/redis.js';
import { createTestDatabase, type TestDatabase } from './testDatabase.js';
import { TEST_REDIS_URL, deleteQueueKeys, testQueuePrefix } from './testRedis.js';

export interface TestFleet {
  config: Config;
  db: TestDatabase;
  producer: Producer;
  /**
   * Events of the deliveries queue, for awaiting 'completed' and 'failed' of delivery jobs and
   * 'delivery' (a delivery a fan-out ended; HOOKFLEET_DELIVERY_EVENTS is on in TEST_ENV).
   */
  events: QueueEvents;
  /** Events of every shard of the deliveries queue (`events` is shard 0's). */
  shardEvents: QueueEvents[];
  /** `metrics`: the worker's registry, for a test that reads its counters (default: a fresh one). */
  startWorker(overrides?: Record<string, string>, metrics?: Metrics): RunningWorker;
  /** Resolves when the delivery job ends: completed, or failed for good. */
  waitForDelivery(jobId: string): Promise<DeliveryEnd>;
  /**
   * Queues a delivery job of the older format (it carries its body) for message `messageId`, as
   * one queued before an endpoint changed would be; resolves with its job id.
   */
  queueDelivery(messageId: string, endpointId: string): Promise<string>;
  /**
   * Resolves once, for each of `jobs` (an id, or a test of the id), a job has completed after
   * this call; for jobs that already ended once and are sent again (replay, redeliver).
   */
  nextCompletions(jobs: readonly (string | ((jobId: string) => boolean))[]): Promise<void>;
  /** Flushes every worker's success recorder, so the database shows what was delivered. */
  flushRecorders(): Promise<void>;
  /** Closes workers, producer and events, drops the database and the queue keys. */
  close(): Promise<void>;
}

export type DeliveryEnd = { state: 'completed' } | { state: 'failed'; reason: string };

/** Environment every test fleet starts from: loopback receivers allowed, fast retries and flushes. */
export const TEST_ENV = {
  HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
  HOOKFLEET_RETRY_SCHEDULE: '20ms,20ms,20ms',
  HOOKFLEET_RECORDER_FLUSH_MS: '50',
  HOOKFLEET_ENDPOINT_CACHE_MS: '50',
  HOOKFLEET_DELIVERY_TIMEOUT_MS: '2000',
  // Fan-outs announce the deliveries they end, so waitForDelivery sees every delivery end.
  HOOKFLEET_DELIVERY_EVENTS: '1',
  LOG_LEVEL: 'silent',
};

export interface TestFleetOptions {
  /**
   * Fixed reconnection delay for the QueueEvents connection. Default: BullMQ's (1 s, growing to
   * 20 s). Tests that stop Redis set it: BullMQ's `disconnect()` of a connection waiting to
   * reconnect never resolves (ioredis emits no 'end' then), so `close()` would hang.
   */
  eventsRetryMs?: number;
  /** Deletes the queue keys on close; default: deleteQueueKeys on the test Redis. */
  deleteKeys?: (prefix: string) => Promise<void>;
}

/** A database, a queue prefix, a producer and (on demand) workers of this test file's own. */
export async function createTestFleet(
  env: Record<string, string> = {},
  options: TestFleetOptions = {},
): Promise<TestFleet> {
  const db = await createTestDatabase();
  const prefix = testQueuePrefix();
  const baseEnv = {
    ...TEST_ENV,
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: db.url,
    HOOKFLEET_QUEUE_PREFIX: prefix,
    ...env,
  };
  const config = loadConfig(baseEnv);
  const producer = new Producer({ config, dbClient: db });
  const retryMs = options.eventsRetryMs;
  const connection =
    config.redis.kind === 'cluster'
      ? () => createWorkerRedis(config.redis, 'test:events')
      : () =>
          retryMs === undefined
            ? { url: config.redisUrl }
            : { url: config.redisUrl, retryStrategy: () => retryMs };
  // Workers serve the shards of HOOKFLEET_QUEUE_SHARDS and any listed in HOOKFLEET_WORKER_SHARDS.
  const shardCount = Math.max(config.queueShards, ...(config.workerShards ?? []).map((n) => n + 1));
  const shardEvents = Array.from(
    { length: shardCount },
    (_, shard) =>
      new QueueEvents(DELIVERIES_QUEUE, {
        connection: connection(),
        prefix: shardPrefix(config, DELIVERIES_QUEUE, shard),
      }),
  );
  const events = shardEvents[0]!;
  // Collected from the start, so an end that comes before anyone waits for it is not missed.
  const ended = new Map<string, DeliveryEnd>();
  const waiters = new Map<string, (end: DeliveryEnd) => void>();
  const settle = (jobId: string, end: DeliveryEnd) => {
    ended.set(jobId, end);
    waiters.get(jobId)?.(end);
  };
  for (const shard of shardEvents) {
    shard.on('completed', ({ jobId }) => settle(jobId, { state: 'completed' }));
    // QueueEvents 'failed' fires only when a job lands in the failed set, not for retried attempts.
    shard.on('failed', ({ jobId, failedReason }) =>
      settle(jobId, { state: 'failed', reason: failedReason }),
    );
    shard.on('delivery' as 'completed', (fields: Record<string, string>) => {
      const jobId = fields.jobId!;
      if (fields.state === 'completed') settle(jobId, { state: 'completed' });
      else settle(jobId, { state: 'failed', reason: fields.failedReason ?? '' });
    });
  }
  await Promise.all(shardEvents.map((shard) => shard.waitUntilReady()));
  const workers: RunningWorker[] = [];
  return {
    config,
    db,
    producer,
    events,
    shardEvents,
    startWorker(overrides = {}, metrics = createMetrics({ defaultMetrics: false })) {
      const workerConfig = loadConfig({ ...baseEnv, ...overrides });
      const running = startWorker({
        config: workerConfig,
        logger: createLogger(workerConfig),
        dbClient: db,
        metrics,
      });
      workers.push(running);
      return running;
    },
    async queueDelivery(messageId, endpointId) {
      const jobId = deliveryJobId(messageId, endpointId);
      const data = { messageId, endpointId, eventType: 't', body: '{}', enqueuedAtMs: Date.now() };
      await producer.deliveriesQueue.add('deliver', data, { jobId });
      return jobId;
    },
    waitForDelivery(jobId) {
      const end = ended.get(jobId);
      if (end) return Promise.resolve(end);
      return new Promise((resolve) => waiters.set(jobId, resolve));
    },
    nextCompletions(jobs) {
      const waiting = jobs.map((job) =>
        typeof job === 'string' ? (jobId: string) => jobId === job : job,
      );
      return new Promise((resolve) => {
        const onCompleted = ({ jobId, state }: { jobId: string; state?: string }) => {
          if (state !== undefined && state !== 'completed') return;
          const index = waiting.findIndex((matches) => matches(jobId));
          if (index >= 0) waiting.splice(index, 1);
          if (waiting.length > 0) return;
          for (const shard of shardEvents) {
            shard.off('completed', onCompleted);
            shard.off('delivery' as 'completed', onCompleted);
          }
          resolve();
        };
        if (waiting.length === 0) resolve();
        else {
          for (const shard of shardEvents) {
            shard.on('completed', onCompleted);
            shard.on('delivery' as 'completed', onCompleted);
          }
        }
      });
    },
    async flushRecorders() {
      await Promise.all(workers.map((w) => w.recorder.flush()));
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await producer.close();
      await Promise.all(shardEvents.map((shard) => shard.close()));
      await db.drop();
      await (options.deleteKeys ?? deleteQueueKeys)(prefix);
    },
  };
}
