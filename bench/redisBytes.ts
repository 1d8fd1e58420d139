/**
 * Redis memory per queued delivery: messages are sent with the real Producer to a queue no
 * worker reads, and Redis's `used_memory` grows by what they hold. Side by side, the same
 * deliveries as one job each carrying the body (how hookfleet queued them before fan-out jobs).
 * Run it against a Redis of its own (`--redis-url`): other clients' activity moves used_memory.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { createDbClient } from '../src/db/client.js';
import { insertEndpoint } from '../src/db/endpoints.js';
import { runMigrations } from '../src/db/migrate.js';
import {
  DELIVERIES_QUEUE,
  DELIVERY_JOB,
  DELIVERY_JOB_OPTIONS,
  deliveryJobId,
  type DeliveryJobData,
} from '../src/jobs.js';
import { Producer } from '../src/producer/producer.js';
import { createQueueBackend } from '../src/queueBackend.js';
import { closeShardedQueue, openShardedQueue } from '../src/queueShards.js';
import { createDeliveryFollowUps } from '../src/worker/deliveryFollowUps.js';
import { createBenchScratch } from './scratch.js';

export interface RedisBytesOptions {
  redisUrl?: string;
  adminUrl?: string;
  /** Endpoints each message goes to. Default 100. */
  endpoints?: number;
  /** Messages per payload size sent with the Producer (the per-delivery jobs use 20). Default 500. */
  messages?: number;
  log?: (line: string) => void;
}

export interface RedisBytesRow {
  payloadBytes: number;
  deliveries: number;
  /** One fan-out job per message; the body is in PostgreSQL. */
  hookfleetBytesPerDelivery: number;
  /** The same per message: what one fan-out job costs, whatever its fan-out. */
  hookfleetBytesPerMessage: number;
  /** One job per delivery carrying the body. */
  perDeliveryJobBytesPerDelivery: number;
  /**
   * A retry waiting its turn: the delivery job a worker adds after a failed first attempt, with
   * its entry in the delayed set (the queue's capped event stream not counted).
   */
  pendingRetryBytes: number;
}

export async function runRedisBytesBench(
  options: RedisBytesOptions = {},
): Promise<RedisBytesRow[]> {
  const e = options.endpoints ?? 100;
  const messages = options.messages ?? 500;
  const oldMessages = 20;
  const log = options.log ?? (() => {});
  const scratch = await createBenchScratch(options);
  const { redisUrl } = scratch;
  const prefixes: string[] = [];
  const redis = new Redis(redisUrl);
  const db = createDbClient(scratch.dbUrl);
  const usedMemory = async () => {
    const info = await redis.info('memory');
    return Number(/used_memory:(\d+)/.exec(info)![1]);
  };
  try {
    await runMigrations(scratch.dbUrl);
    const endpointIds: string[] = [];
    for (let i = 0; i < e; i++) {
      endpointIds.push((await insertEndpoint(db.db, { url: `http://127.0.0.1:9/e/${i}` })).id);
    }
    const rows: RedisBytesRow[] = [];
    for (const payloadBytes of [1024, 64 * 1024]) {
      const pad = 'x'.repeat(payloadBytes - 20);
      const deliveries = messages * e;

      const prefix = `hfbench-${scratch.runId}-${prefixes.length}`;
      prefixes.push(prefix);
      const config = loadConfig({
        REDIS_URL: redisUrl,
        DATABASE_URL: scratch.dbUrl,
        HOOKFLEET_QUEUE_PREFIX: prefix,
      });
      const producer = new Producer({ config, dbClient: db });
      // The first send creates the queue's own keys (meta, events); not what a delivery costs.
      await producer.send({ eventType: 'bench', payload: { n: -1, pad } });
      const before = await usedMemory();
      for (let m = 0; m < messages; m += 10) {
        await Promise.all(
          Array.from({ length: 10 }, (_, j) =>
            producer.send({ eventType: 'bench', payload: { n: m + j, pad } }),
          ),
        );
      }
      const hookfleet = ((await usedMemory()) - before) / deliveries;
      await producer.close();

      const oldPrefix = `hfbench-${scratch.runId}-${prefixes.length}`;
      prefixes.push(oldPrefix);
      const queue = new Queue(DELIVERIES_QUEUE, {
        connection: { url: redisUrl },
        prefix: oldPrefix,
      });
      await queue.add('warm-up', {});
      const oldBefore = await usedMemory();
      for (let m = 0; m < oldMessages; m++) {
        const body = JSON.stringify({ n: m, pad });
        await queue.addBulk(
          endpointIds.map((endpointId) => ({
            name: DELIVERY_JOB,
            data: {
              messageId: `msg_${m}`,
              endpointId,
              eventType: 'bench',
              body,
              enqueuedAtMs: Date.now(),
            },
            opts: { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(`msg_${m}`, endpointId) },
          })),
        );
      }
      const perDeliveryJob = ((await usedMemory()) - oldBefore) / (oldMessages * e);
      await queue.close();

      // Retries as a worker adds them (deliveryFollowUps.ts), due in an hour: ids only, so the
      // payload size should not show.
      const retryPrefix = `hfbench-${scratch.runId}-${prefixes.length}`;
      prefixes.push(retryPrefix);
      const retryConfig = { ...config, queuePrefix: retryPrefix };
      const backend = createQueueBackend(retryConfig, 'redis');
      const retryQueue = openShardedQueue<DeliveryJobData>(
        backend,
        retryConfig,
        DELIVERIES_QUEUE,
        1,
        'queues',
      );
      const followUps = createDeliveryFollowUps(retryQueue);
      const retry = (m: number, endpointId: string) =>
        followUps.add({
          messageId: `msg_retry_${m}`,
          endpointId,
          attemptsBefore: 1,
          enqueuedAtMs: Date.now(),
          delayMs: 3600_000,
        });
      await retry(-1, endpointIds[0]!);
      // The queue's event stream holds an entry per added job up to its cap (10,000 a queue), so
      // a large backlog of retries does not grow it: counted apart.
      const eventsKey = `${retryPrefix}:${DELIVERIES_QUEUE}:events`;
      const streamBytes = async () => Number(await redis.memory('USAGE', eventsKey));
      const retryBefore = (await usedMemory()) - (await streamBytes());
      for (let m = 0; m < oldMessages; m++) {
        await Promise.all(endpointIds.map((endpointId) => retry(m, endpointId)));
      }
      const pendingRetry =
        ((await usedMemory()) - (await streamBytes()) - retryBefore) / (oldMessages * e);
      await closeShardedQueue(retryQueue);
      await backend.close();

      const row = {
        payloadBytes,
        deliveries,
        hookfleetBytesPerDelivery: Math.round(hookfleet),
        hookfleetBytesPerMessage: Math.round(hookfleet * e),
        perDeliveryJobBytesPerDelivery: Math.round(perDeliveryJob),
        pendingRetryBytes: Math.round(pendingRetry),
      };
      log(
        `Redis bytes per queued delivery, ${payloadBytes / 1024} KiB payload, ${e} endpoints each: hookfleet ${row.hookfleetBytesPerDelivery} (${row.hookfleetBytesPerMessage} per message), one job per delivery ${row.perDeliveryJobBytesPerDelivery}; a pending retry ${row.pendingRetryBytes}`,
      );
      rows.push(row);
    }
    return rows;
  } finally {
    await db.close();
    await redis.quit();
    await scratch.remove(prefixes);
  }
}
