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
import {
  postgresCpu,
  processCpuSeconds,
  processSyscalls,
  redisServerCpu,
  sampleAll,
} from './apiLoad.js';
import { createBenchScratch } from './scratch.js';
import { Redis } from 'ioredis';

const PAD = 'x'.repeat(1000); // ~1 KiB bodies

export interface FanOutWorkloadOptions {
  /** Deliveries per run. Default 20,000. */
  deliveries?: number;
  workers?: number;
  concurrency?: number;
  redisUrl?: string;
  adminUrl?: string;
  /**
   * Another checkout of hookfleet (built, with its node_modules), whose worker runs each workload
   * too, right after this one's, on the same database and receiver (mode `compared`): a change
   * measured side by side in one run, on a host whose load moves between runs. Its migrations
   * must match this checkout's.
   */
  compareRoot?: string;
  /**
   * Run only hookfleet (and `compared`), `pairs` times each, alternating: the baselines do not
   * change with hookfleet, and on a busy host several interleaved pairs say more about a change
   * than one. Default: one run of every mode.
   */
  pairs?: number;
  /** Workloads to run. Default both. */
  workloads?: readonly ('broadcast' | 'per-customer')[];
  log?: (line: string) => void;
}

/** `compared`: hookfleet's worker from the checkout in `compareRoot`, when given. */
export type Mode = 'hookfleet' | 'compared' | 'naive' | 'perDeliveryCeiling' | 'perMessageCeiling';

export interface FanOutWorkloadResult {
  deliveries: number;
  /** Deliveries/s of each mode. */
  broadcast: Partial<Record<Mode, number>>;
  perCustomer: Partial<Record<Mode, number>>;
  /**
   * CPU ms per delivery of each mode's worker processes, and of the receiver, PostgreSQL (this
   * run's backends) and Redis (the whole server): on a host shared with other jobs these move far
   * less between runs than deliveries/s, which follow whatever CPU is left over.
   */
  cpuMsPerDelivery: {
    broadcast: Partial<Record<Mode, CpuShare>>;
    perCustomer: Partial<Record<Mode, CpuShare>>;
  };
  /** Write and read system calls (socket writes and reads) of each mode's workers per delivery. */
  workerSyscallsPerDelivery: {
    broadcast: Partial<Record<Mode, { writes: number; reads: number }>>;
    perCustomer: Partial<Record<Mode, { writes: number; reads: number }>>;
  };
  /** hookfleet's sends into the paused queue (50 in flight, Producer.send), deliveries/s. */
  enqueuePerSecond: { broadcast?: number; perCustomer?: number };
  /** Largest RSS of a hookfleet worker during each workload's run (MiB). */
  workerPeakRssMiB: { broadcast?: number; perCustomer?: number };
}

export interface CpuShare {
  workers: number;
  receiver: number;
  postgres: number;
  redis: number;
}

export async function runFanOutWorkloads(
  options: FanOutWorkloadOptions = {},
): Promise<FanOutWorkloadResult> {
  const n = options.deliveries ?? 20_000;
  const workers = options.workers ?? 2;
  const concurrency = options.concurrency ?? 50;
  const log = options.log ?? (() => {});
  const compareRoot = options.compareRoot?.replace(/\/?$/, '/');
  const scratch = await createBenchScratch(options);
  const { redisUrl } = scratch;
  const prefixes: string[] = [];
  const receiver = await startReceiverProcess();
  const db = createDbClient(scratch.dbUrl);
  const infoRedis = new Redis(redisUrl);
  const meter: CpuMeter = (workerPids) => () =>
    sampleAll({
      workers: () => Promise.resolve(processCpuSeconds(workerPids)),
      workerWrites: () => Promise.resolve(processSyscalls(workerPids, 'syscw')),
      workerReads: () => Promise.resolve(processSyscalls(workerPids, 'syscr')),
      receiver: () => Promise.resolve(processCpuSeconds([receiver.pid])),
      postgres: postgresCpu(scratch.admin, scratch.dbName),
      redis: redisServerCpu(infoRedis),
    });
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
      root?: string,
    ) => {
      const prefix = newPrefix();
      const producer = new Producer({ config: loadConfig(workerEnv(prefix)), dbClient: db });
      await producer.messagesQueue.pause();
      const messages = n / per;
      const enqueueStarted = performance.now();
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
      const enqueue = Math.round(n / ((performance.now() - enqueueStarted) / 1000));
      const run = await drain(receiver, n, producer.messagesQueue, meter, () =>
        start(() => startHookfleetWorker(workerEnv(prefix), root)),
      );
      await producer.close();
      log(`${name} ${root ?? 'hookfleet'}: ${describe(run)}; enqueued at ${enqueue}/s`);
      return { ...run, enqueue };
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
      const run = await drain(receiver, n, queue, meter, () =>
        start(() => startBaselineWorker(mode, env)),
      );
      await queue.close();
      log(`${name} ${mode}: ${describe(run)}`);
      return run;
    };

    const body = (k: number) => JSON.stringify({ n: k, pad: PAD });
    const perDelivery = (ids: string[], urlOf: (i: number) => string) => (k: number) => ({
      url: urlOf(k % ids.length),
      endpointId: ids[k % ids.length]!,
      body: body(k),
    });
    const workloads = options.workloads ?? ['broadcast', 'per-customer'];
    const result: FanOutWorkloadResult = {
      deliveries: n,
      broadcast: {},
      perCustomer: {},
      cpuMsPerDelivery: { broadcast: {}, perCustomer: {} },
      workerSyscallsPerDelivery: { broadcast: {}, perCustomer: {} },
      enqueuePerSecond: {},
      workerPeakRssMiB: {},
    };
    const keep = (workload: 'broadcast' | 'perCustomer', mode: Mode, run: DrainResult) => {
      result[workload][mode] = run.perSecond;
      result.cpuMsPerDelivery[workload][mode] = run.cpuMsPerDelivery;
      result.workerSyscallsPerDelivery[workload][mode] = {
        writes: run.workerWritesPerDelivery,
        reads: run.workerReadsPerDelivery,
      };
    };
    if (options.pairs !== undefined) {
      for (let pair = 0; pair < options.pairs; pair++) {
        for (const root of [undefined, compareRoot]) {
          if (workloads.includes('broadcast'))
            await hookfleet('broadcast', 'broadcast', () => broadcastIds, 100, root);
          if (workloads.includes('per-customer'))
            await hookfleet(
              'per-customer',
              'customer',
              (m: number) => [customerIds[m % customerIds.length]!],
              1,
              root,
            );
        }
      }
      return result;
    }
    if (workloads.includes('broadcast')) {
      const h = await hookfleet('broadcast', 'broadcast', () => broadcastIds, broadcastIds.length);
      keep('broadcast', 'hookfleet', h);
      result.enqueuePerSecond.broadcast = h.enqueue;
      result.workerPeakRssMiB.broadcast = h.peakRssMiB;
      if (compareRoot) {
        const c = await hookfleet('broadcast', 'broadcast', () => broadcastIds, 100, compareRoot);
        keep('broadcast', 'compared', c);
      }
      const jobs = perDelivery(broadcastIds, url);
      keep('broadcast', 'naive', await baseline('broadcast', 'naive', n, jobs));
      keep('broadcast', 'perDeliveryCeiling', await baseline('broadcast', 'ceiling', n, jobs));
      keep(
        'broadcast',
        'perMessageCeiling',
        await baseline('broadcast', 'per-message', n / 100, (m) => ({
          urls: broadcastIds.map((_, i) => url(i)),
          body: body(m),
        })),
      );
    }
    if (workloads.includes('per-customer')) {
      const customerUrl = (i: number) => url(1000 + i);
      const h = await hookfleet(
        'per-customer',
        'customer',
        (m: number) => [customerIds[m % customerIds.length]!],
        1,
      );
      keep('perCustomer', 'hookfleet', h);
      result.enqueuePerSecond.perCustomer = h.enqueue;
      result.workerPeakRssMiB.perCustomer = h.peakRssMiB;
      if (compareRoot) {
        const c = await hookfleet(
          'per-customer',
          'customer',
          (m: number) => [customerIds[m % customerIds.length]!],
          1,
          compareRoot,
        );
        keep('perCustomer', 'compared', c);
      }
      const jobs = perDelivery(customerIds, customerUrl);
      keep('perCustomer', 'naive', await baseline('per-customer', 'naive', n, jobs));
      keep('perCustomer', 'perDeliveryCeiling', await baseline('per-customer', 'ceiling', n, jobs));
    }
    return result;
  } finally {
    await db.close();
    await infoRedis.quit();
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

interface DrainResult {
  perSecond: number;
  cpuMsPerDelivery: CpuShare;
  /** The workers' write and read system calls (socket writes and reads) per delivery. */
  workerWritesPerDelivery: number;
  workerReadsPerDelivery: number;
  peakRssMiB: number;
}

function describe(run: DrainResult): string {
  const cpu = run.cpuMsPerDelivery;
  return `${run.perSecond}/s; CPU ms/delivery workers ${cpu.workers}, receiver ${cpu.receiver}, postgres ${cpu.postgres}, redis ${cpu.redis}; worker writes/reads per delivery ${run.workerWritesPerDelivery}/${run.workerReadsPerDelivery}; worker peak RSS ${run.peakRssMiB} MiB`;
}

/** CPU seconds so far of each group of processes a run uses; workers' pids are given per run. */
type CpuMeter = (
  workerPids: number[],
) => () => Promise<Record<keyof CpuShare | 'workerWrites' | 'workerReads', number>>;

/**
 * Starts the workers, resumes the queue, and measures until all `n` were received: deliveries/s,
 * CPU per delivery of each process group, and the workers' peak RSS.
 */
async function drain(
  receiver: ReceiverProcess,
  n: number,
  queue: Queue,
  meter: CpuMeter,
  start: () => Promise<WorkerHandle[]>,
): Promise<DrainResult> {
  await receiver.reset();
  const handles = await start();
  try {
    const sample = meter(handles.map((h) => h.pid));
    const before = await sample();
    const startedMs = performance.now();
    await queue.resume();
    while ((await receiver.received()) < n) {
      if (performance.now() - startedMs > 600_000) throw new Error('not drained in 10 minutes');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const seconds = (performance.now() - startedMs) / 1000;
    const after = await sample();
    const per = (k: keyof CpuShare) => Math.round(((after[k] - before[k]) * 1e6) / n) / 1000;
    return {
      perSecond: Math.round(n / seconds),
      cpuMsPerDelivery: {
        workers: per('workers'),
        receiver: per('receiver'),
        postgres: per('postgres'),
        redis: per('redis'),
      },
      workerWritesPerDelivery:
        Math.round(((after.workerWrites - before.workerWrites) / n) * 100) / 100,
      workerReadsPerDelivery:
        Math.round(((after.workerReads - before.workerReads) / n) * 100) / 100,
      peakRssMiB: Math.max(...handles.map((h) => h.peakRssMiB())),
    };
  } finally {
    await Promise.all(handles.map((h) => h.stop()));
  }
}
