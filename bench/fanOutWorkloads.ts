/**
 * Fan-out workloads, side by side in one run, on one receiver process:
 * - broadcast: each message to every one of 100 endpoints;
 * - per-customer: each message to 1 of 10,000 endpoints.
 * Each is drained by hookfleet (real `hookfleet worker` processes, everything on), the naive
 * worker (one job per delivery, one UPDATE each), the per-delivery ceiling (one job per delivery,
 * no database) and, for broadcast, the per-message ceiling (one plain BullMQ job per message
 * carrying its URLs and body, POSTed in parallel, no database). Jobs are queued into a paused
 * queue; the clock runs from resuming it to the last delivery received (and, for hookfleet,
 * recorded in PostgreSQL).
 */
import { Queue } from 'bullmq';
import { loadConfig } from '../src/config.js';
import { createDbClient, type DbClient } from '../src/db/client.js';
import { insertEndpoint } from '../src/db/endpoints.js';
import { runMigrations } from '../src/db/migrate.js';
import { DELIVERIES_QUEUE } from '../src/jobs.js';
import { Producer } from '../src/producer/producer.js';
import {
  startBaselineWorker,
  startHookfleetWorker,
  startReceiverProcess,
  type ReceiverProcess,
  type WorkerHandle,
} from './delivery.js';
import { createBenchScratch } from './scratch.js';

const PAD = 'x'.repeat(1000); // ~1 KiB bodies

export interface FanOutWorkloadOptions {
  /** Deliveries per run. Default 20,000. */
  deliveries?: number;
  workers?: number;
  concurrency?: number;
  redisUrl?: string;
  adminUrl?: string;
  /** Workloads to run. Default both. */
  workloads?: readonly ('broadcast' | 'per-customer')[];
  log?: (line: string) => void;
}

export type Mode = 'hookfleet' | 'naive' | 'perDeliveryCeiling' | 'perMessageCeiling';

export interface FanOutWorkloadResult {
  deliveries: number;
  broadcast: Partial<Record<Mode, number>>;
  perCustomer: Partial<Record<Mode, number>>;
}

export async function runFanOutWorkloads(
  options: FanOutWorkloadOptions = {},
): Promise<FanOutWorkloadResult> {
  const n = options.deliveries ?? 20_000;
  const workers = options.workers ?? 2;
  const concurrency = options.concurrency ?? 50;
  const redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
  const adminUrl = options.adminUrl ?? 'postgres://root@127.0.0.1:5432/postgres';
  const log = options.log ?? (() => {});
  const scratch = await createBenchScratch(adminUrl, redisUrl);
  const prefixes: string[] = [];
  const receiver = await startReceiverProcess();
  const db = createDbClient(scratch.dbUrl);
  const newPrefix = () => {
    prefixes.push(`hfbench-${scratch.runId}-${prefixes.length}`);
    return prefixes[prefixes.length - 1]!;
  };
  const url = (i: number) => `http://127.0.0.1:${receiver.port}/e/${i}`;
  try {
    await runMigrations(scratch.dbUrl);
    const broadcastIds = await endpoints(db, 'broadcast', 100, url);
    const customerIds = await endpoints(db, 'customer', 10_000, (i) => url(1000 + i));
    const workerEnv = (prefix: string) => ({
      REDIS_URL: redisUrl,
      DATABASE_URL: scratch.dbUrl,
      HOOKFLEET_QUEUE_PREFIX: prefix,
      HOOKFLEET_CONCURRENCY: String(concurrency),
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'warn',
    });
    const start = (run: () => Promise<WorkerHandle>) =>
      Promise.all(Array.from({ length: workers }, run));

    /** hookfleet: messages sent with the Producer, `endpointsOf(m)` each. */
    const hookfleet = async (
      name: string,
      eventType: string,
      endpointsOf: (m: number) => string[],
      per: number,
    ) => {
      const prefix = newPrefix();
      const producer = new Producer({ config: loadConfig(workerEnv(prefix)), dbClient: db });
      await producer.messagesQueue.pause();
      const messages = n / per;
      for (let m = 0; m < messages; m += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, messages - m) }, (_, j) =>
            producer.send({
              eventType,
              payload: { n: m + j, pad: PAD },
              endpointIds: endpointsOf(m + j),
            }),
          ),
        );
      }
      const rate = await drain(receiver, n, producer.messagesQueue, () =>
        start(() => startHookfleetWorker(workerEnv(prefix))),
      );
      await producer.close();
      log(`${name} hookfleet: ${rate}/s`);
      return rate;
    };

    /** A baseline: the jobs `jobsFor(i)` (i < count) in a paused queue, drained by `mode`. */
    const baseline = async (
      name: string,
      mode: 'naive' | 'ceiling' | 'per-message',
      count: number,
      jobFor: (i: number) => Record<string, unknown>,
    ) => {
      const prefix = newPrefix();
      const queue = new Queue(DELIVERIES_QUEUE, { connection: { url: redisUrl }, prefix });
      await queue.pause();
      for (let i = 0; i < count; i += 1000) {
        await queue.addBulk(
          Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({
            name: 'deliver',
            data: jobFor(i + j),
          })),
        );
      }
      const env = {
        REDIS_URL: redisUrl,
        DATABASE_URL: scratch.dbUrl,
        QUEUE_PREFIX: prefix,
        // A per-message job POSTs to all its URLs at once: one job at a time per process is
        // already 100 requests in flight, twice hookfleet's default bound.
        CONCURRENCY: mode === 'per-message' ? '1' : String(concurrency),
      };
      const rate = await drain(receiver, n, queue, () =>
        start(() => startBaselineWorker(mode, env)),
      );
      await queue.close();
      log(`${name} ${mode}: ${rate}/s`);
      return rate;
    };

    const body = (k: number) => JSON.stringify({ n: k, pad: PAD });
    const perDelivery = (ids: string[], urlOf: (i: number) => string) => (k: number) => ({
      url: urlOf(k % ids.length),
      endpointId: ids[k % ids.length]!,
      body: body(k),
    });
    const workloads = options.workloads ?? ['broadcast', 'per-customer'];
    const broadcast: FanOutWorkloadResult['broadcast'] = !workloads.includes('broadcast')
      ? {}
      : {
          hookfleet: await hookfleet(
            'broadcast',
            'broadcast',
            () => broadcastIds,
            broadcastIds.length,
          ),
          naive: await baseline('broadcast', 'naive', n, perDelivery(broadcastIds, url)),
          perDeliveryCeiling: await baseline(
            'broadcast',
            'ceiling',
            n,
            perDelivery(broadcastIds, url),
          ),
          perMessageCeiling: await baseline('broadcast', 'per-message', n / 100, (m) => ({
            urls: broadcastIds.map((_, i) => url(i)),
            body: body(m),
          })),
        };
    const customerUrl = (i: number) => url(1000 + i);
    const perCustomer: FanOutWorkloadResult['perCustomer'] = !workloads.includes('per-customer')
      ? {}
      : {
          hookfleet: await hookfleet(
            'per-customer',
            'customer',
            (m: number) => [customerIds[m % customerIds.length]!],
            1,
          ),
          naive: await baseline('per-customer', 'naive', n, perDelivery(customerIds, customerUrl)),
          perDeliveryCeiling: await baseline(
            'per-customer',
            'ceiling',
            n,
            perDelivery(customerIds, customerUrl),
          ),
        };
    return { deliveries: n, broadcast, perCustomer };
  } finally {
    await db.close();
    await receiver.stop();
    await scratch.remove(prefixes);
  }
}

async function endpoints(
  db: DbClient,
  eventType: string,
  count: number,
  urlOf: (i: number) => string,
): Promise<string[]> {
  const first = await insertEndpoint(db.db, { url: urlOf(0), eventTypes: [eventType] });
  const rest = await db.sql<{ id: string }[]>`
    insert into endpoints (id, url, secret, event_types)
    select ${`ep_${eventType}_`} || g, ${urlOf(0).replace(/\d+$/, '')} || g, ${first.secret}, ${`{${eventType}}`}::text[]
    from generate_series(1, ${count - 1}) g
    returning id`;
  return [first.id, ...rest.map((row) => row.id)];
}

/** Starts the workers, resumes the queue, and returns deliveries/s until all `n` were received. */
async function drain(
  receiver: ReceiverProcess,
  n: number,
  queue: Queue,
  start: () => Promise<WorkerHandle[]>,
): Promise<number> {
  await receiver.reset();
  const handles = await start();
  try {
    const startedMs = performance.now();
    await queue.resume();
    while ((await receiver.received()) < n) {
      if (performance.now() - startedMs > 600_000) throw new Error('not drained in 10 minutes');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return Math.round(n / ((performance.now() - startedMs) / 1000));
  } finally {
    await Promise.all(handles.map((h) => h.stop()));
  }
}
