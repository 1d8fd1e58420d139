/**
 * The fleet on a real Redis Cluster (3 masters, 3 replicas; test/helpers/redisCluster.ts), its
 * queues split over 6 shards. One cluster for the whole file, shared by its tests.
 *
 * Checked here: deliveries, a retry, the sweep and a SIGKILLed worker process work as on one
 * node; the shards' keys sit on more than one master; a master killed mid-run is replaced by its
 * replica and the same processes deliver every message without a restart; jobs left on shards a
 * smaller HOOKFLEET_QUEUE_SHARDS no longer writes to are still delivered.
 */
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { loadConfig } from '../../src/config.js';
import { MAINTENANCE_QUEUE, deliveryJobId } from '../../src/jobs.js';
import { createLogger } from '../../src/logger.js';
import { Producer } from '../../src/producer/producer.js';
import { shardPrefix, singleQueuePrefix } from '../../src/queueShards.js';
import { createWorkerRedis } from '../../src/redis.js';
import { SWEEP_SCHEDULER_ID, startMaintenance } from '../../src/worker/maintenance.js';
import { startDeliveryLedger, type DeliveryLedger } from '../helpers/deliveryLedger.js';
import {
  addEndpoints,
  FAULT_EVENT,
  startWorkerProcesses,
  stopAll,
  workerEnv,
} from '../helpers/faultRig.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redisCluster.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';
import type { WorkerProcess } from '../helpers/workerProcess.js';

const SHARDS = 6;

let cluster: RedisCluster;
let fleet: TestFleet;
let ledger: DeliveryLedger;
let clusterEnv: Record<string, string>;
const processes: WorkerProcess[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  clusterEnv = {
    REDIS_CLUSTER_NODES: cluster.seeds,
    HOOKFLEET_QUEUE_SHARDS: String(SHARDS),
    HOOKFLEET_LOCK_DURATION_MS: '3000',
    HOOKFLEET_STALLED_INTERVAL_MS: '1000',
    LOG_LEVEL: process.env.CLUSTER_LOG ?? 'silent',
  };
  fleet = await createTestFleet(clusterEnv, { deleteKeys: (prefix) => cluster.deleteKeys(prefix) });
  ledger = await startDeliveryLedger();
}, 60_000);
afterAll(async () => {
  try {
    await stopAll(processes, 'SIGKILL');
    await fleet?.close();
    await ledger?.close();
  } finally {
    // Whatever failed above, no cluster node outlives the file.
    await cluster?.close();
  }
}, 60_000);

/** Sends `count` messages to every one of `endpointIds`, 10 at a time; returns their ids. */
async function send(count: number, endpointIds: string[], producer = fleet.producer) {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 10) {
    const sent = await Promise.all(
      Array.from({ length: Math.min(10, count - i) }, (_, j) =>
        producer.send({ eventType: FAULT_EVENT, payload: { n: i + j }, endpointIds }),
      ),
    );
    ids.push(...sent.map((s) => s.id));
  }
  return ids;
}

/**
 * The deliveries (message x endpoint `/e<from + i>`) that have not arrived once all have or
 * `boundMs` has passed: a lost job then fails the test naming what is missing, instead of
 * timing it out.
 */
async function missingAfter(
  messageIds: string[],
  from: number,
  endpoints: number,
  boundMs: number,
): Promise<string[]> {
  const missing = () =>
    messageIds.flatMap((id) =>
      Array.from({ length: endpoints }, (_, i) => `${id} /e${from + i}`).filter(
        (key) => !ledger.arrivals.has(key),
      ),
    );
  let timer: NodeJS.Timeout | undefined;
  const arrived = (async () => {
    while (missing().length > 0) await ledger.waitForUnique(ledger.unique + 1);
  })();
  await Promise.race([arrived, new Promise((resolve) => (timer = setTimeout(resolve, boundMs)))]);
  clearTimeout(timer);
  return missing();
}

describe('hookfleet on a Redis Cluster', () => {
  it('delivers every message, with the queue shards spread over the masters', async () => {
    const worker = fleet.startWorker(clusterEnv);
    try {
      const endpoints = await addEndpoints(fleet, 5, ledger.url);
      const before = ledger.unique;
      await send(
        40,
        endpoints.map((e) => e.id),
      );
      await ledger.waitForUnique(before + 200);
      const masters = new Set(
        await Promise.all(
          Array.from({ length: SHARDS }, (_, shard) =>
            cluster.masterPortOf(`${shardPrefix(fleet.config, 'messages', shard)}:messages:wait`),
          ),
        ),
      );
      expect(masters.size).toBeGreaterThan(1);
      expect(await worker.shardsServed()).toEqual([0, 1, 2, 3, 4, 5]);
    } finally {
      await worker.close();
    }
  }, 60_000);

  it('retries a failed attempt through a delivery job on the message’s shard', async () => {
    const receiver = await startReceiver((_request, index, res) => {
      res.writeHead(index === 0 ? 500 : 204).end();
    });
    const worker = fleet.startWorker(clusterEnv);
    try {
      const endpoint = await insertEndpoint(fleet.db.db, {
        url: receiver.url,
        eventTypes: [FAULT_EVENT],
      });
      const [id] = await send(1, [endpoint.id]);
      const end = await fleet.waitForDelivery(deliveryJobId(id!, endpoint.id));
      expect(end).toEqual({ state: 'completed' });
      expect(receiver.requests).toHaveLength(2);
      const job = await fleet.producer.deliveries
        .forMessage(id!)
        .getJob(deliveryJobId(id!, endpoint.id));
      expect(job?.attemptsMade).toBe(1);
    } finally {
      await worker.close();
      await receiver.close();
    }
  });

  it('runs the sweep on the cluster', async () => {
    const config = loadConfig({
      ...clusterEnv,
      DATABASE_URL: fleet.config.databaseUrl!,
      HOOKFLEET_QUEUE_PREFIX: fleet.config.queuePrefix,
      HOOKFLEET_SWEEP_CRON: '* * * * * *',
      LOG_LEVEL: 'silent',
    });
    const { id } = await insertEndpoint(fleet.db.db, { url: 'https://receiver.example/stale' });
    // Failed deliveries in its stale window: deactivated at once (an idle one would be probed).
    await fleet.db.sql`update endpoints set created_at = now() - interval '400 days',
      last_failure_at = now() - interval '10 days' where id = ${id}`;
    const events = new QueueEvents(MAINTENANCE_QUEUE, {
      connection: createWorkerRedis(config.redis, 'test:maintenance-events'),
      prefix: singleQueuePrefix(config, MAINTENANCE_QUEUE),
    });
    await events.waitUntilReady();
    // The maintenance queue runs housekeeping too: wait for the sweep's own run.
    const completed = new Promise<void>((resolve) =>
      events.on('completed', ({ jobId }) => {
        if (jobId.startsWith(`repeat:${SWEEP_SCHEDULER_ID}:`)) resolve();
      }),
    );
    const maintenance = await startMaintenance({
      config,
      logger: createLogger(config),
      dbClient: fleet.db,
    });
    try {
      await completed;
      expect(await findEndpoint(fleet.db.db, id)).toMatchObject({
        active: false,
        deactivationReason: 'stale',
      });
    } finally {
      await maintenance.close();
      await events.close();
    }
  });

  it('delivers everything when a worker process is SIGKILLed mid-run', async () => {
    const started = await startWorkerProcesses(
      2,
      workerEnv(fleet, { ...clusterEnv, LOG_LEVEL: 'info' }),
    );
    processes.push(...started);
    const endpoints = await addEndpoints(fleet, 10, ledger.url, 100);
    const before = ledger.unique;
    const ids = await send(
      30,
      endpoints.map((e) => e.id),
    );
    await ledger.waitForUnique(before + 100);
    await started[0]!.stop('SIGKILL');
    expect(await missingAfter(ids, 100, endpoints.length, 90_000)).toEqual([]);
    await stopAll(started.slice(1));
  }, 180_000);

  it('carries on without a restart when a master dies and its replica takes over', async () => {
    const worker = fleet.startWorker(clusterEnv);
    try {
      const endpoints = await addEndpoints(fleet, 10, ledger.url, 200);
      const endpointIds = endpoints.map((e) => e.id);
      const before = ledger.unique;
      // Every message a send accepted; a send refused during the election (503
      // redis_unavailable) is sent again, as a caller would.
      const accepted: string[] = [];
      const sendUntilAccepted = async (count: number) => {
        for (let n = 0; n < count; n++) {
          for (;;) {
            try {
              const sent = await fleet.producer.send({
                eventType: FAULT_EVENT,
                payload: { n },
                endpointIds,
              });
              accepted.push(sent.id);
              break;
            } catch (error) {
              expect(error).toMatchObject({ code: 'redis_unavailable' });
            }
          }
        }
      };
      await sendUntilAccepted(20);
      await ledger.waitForUnique(before + 100);
      // The master holding shard 0 of `messages` dies; its replica is promoted within seconds.
      const victim = await cluster.masterPortOf(
        `${shardPrefix(fleet.config, 'messages', 0)}:messages:wait`,
      );
      const sending = sendUntilAccepted(20);
      await cluster.nodes.find((n) => n.port === victim)!.kill();
      await cluster.waitUntilOk({ without: victim });
      expect(await cluster.masterPorts()).not.toContain(victim);
      await sending;
      await sendUntilAccepted(20);
      expect(await missingAfter(accepted, 200, endpoints.length, 90_000)).toEqual([]);
    } finally {
      await worker.close();
    }
  }, 180_000);

  it('still delivers jobs left on shards a smaller setting no longer writes to', async () => {
    const wider = { ...fleet.config, queueShards: 9 };
    const producer = new Producer({ config: wider, dbClient: fleet.db });
    try {
      const endpoints = await addEndpoints(fleet, 1, ledger.url, 300);
      const before = ledger.unique;
      const ids = await send(30, [endpoints[0]!.id], producer);
      expect(
        new Set(ids.map((id) => producer.messages.shards.indexOf(producer.messages.forMessage(id))))
          .size,
      ).toBeGreaterThan(6);
      // A worker set to 2 shards serves the 9 recorded.
      const worker = fleet.startWorker({ ...clusterEnv, HOOKFLEET_QUEUE_SHARDS: '2' });
      try {
        expect(await worker.shardsServed()).toHaveLength(9);
        await ledger.waitForUnique(before + 30);
      } finally {
        await worker.close();
      }
    } finally {
      await producer.close();
    }
  }, 60_000);
});
