/**
 * Trial mode beside Redis mode, in one run on one receiver process: one real `hookfleet worker`
 * process (trial mode is for one process) drains the same workload with its queues on Redis
 * (`HOOKFLEET_QUEUE_BACKEND=redis`) and on PostgreSQL (`postgres`, BullMQ's PostgreSQL backend),
 * alternating, `rounds` times each. Two workloads: broadcast (each message to 100 endpoints: one
 * job per 100 deliveries) and single (each message to one endpoint: a job per delivery, where the
 * queue's cost per job shows). Messages are queued into a paused `messages` queue; the clock runs
 * from resuming it to the last delivery received.
 */
import { loadConfig } from '../src/config.js';
import { createDbClient, type DbClient } from '../src/db/client.js';
import { insertEndpoint } from '../src/db/endpoints.js';
import { runMigrations } from '../src/db/migrate.js';
import { Producer } from '../src/producer/producer.js';
import { createQueueBackend, type QueueBackendKind } from '../src/queueBackend.js';
import { startHookfleetWorker, startReceiverProcess } from './delivery.js';
import { createBenchScratch } from './scratch.js';

const PAD = 'x'.repeat(1000); // ~1 KiB bodies
const BACKENDS: readonly QueueBackendKind[] = ['redis', 'postgres'];

export interface TrialBenchOptions {
  /** Deliveries per workload and backend. Default 5,000. */
  deliveries?: number | undefined;
  /** Attempts in flight in the worker. Default 50. */
  concurrency?: number | undefined;
  /** Runs of each workload on each backend, alternating. Default 2. */
  rounds?: number | undefined;
  redisUrl?: string;
  adminUrl?: string;
  log?: (line: string) => void;
}

export interface TrialBenchResult {
  deliveries: number;
  concurrency: number;
  /** Deliveries/s of each run, per workload and backend, in run order. */
  deliveriesPerSecond: Record<'broadcast' | 'single', Record<QueueBackendKind, number[]>>;
  /** postgres/redis of the medians, per workload. */
  ratios: Record<'broadcast' | 'single', number>;
}

export async function runTrialBench(options: TrialBenchOptions = {}): Promise<TrialBenchResult> {
  const n = options.deliveries ?? 5000;
  const concurrency = options.concurrency ?? 50;
  const rounds = options.rounds ?? 2;
  const log = options.log ?? (() => {});
  const scratch = await createBenchScratch(options);
  const { redisUrl } = scratch;
  const prefixes: string[] = [];
  const receiver = await startReceiverProcess();
  let db: DbClient | undefined;
  const endpointIds: string[] = [];
  try {
    await runMigrations(scratch.dbUrl);
    db = createDbClient(scratch.dbUrl);
    for (let i = 0; i < 100; i++) {
      endpointIds.push(
        (await insertEndpoint(db.db, { url: `http://127.0.0.1:${receiver.port}/e/${i}` })).id,
      );
    }
    const result: TrialBenchResult['deliveriesPerSecond'] = {
      broadcast: { redis: [], postgres: [] },
      single: { redis: [], postgres: [] },
    };
    for (let round = 0; round < rounds; round++) {
      for (const workload of ['broadcast', 'single'] as const) {
        for (const kind of BACKENDS) {
          const perSecond = await drain(workload, kind);
          result[workload][kind].push(perSecond);
          log(`${workload} on ${kind}: ${n} deliveries at ${perSecond}/s`);
        }
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
    const ratio = (w: 'broadcast' | 'single') =>
      Math.round((100 * median(result[w].postgres)) / median(result[w].redis)) / 100;
    return {
      deliveries: n,
      concurrency,
      deliveriesPerSecond: result,
      ratios: { broadcast: ratio('broadcast'), single: ratio('single') },
    };
  } finally {
    await db?.close();
    await receiver.stop();
    await scratch.remove(prefixes);
  }

  /** Queues the workload on `kind`, starts one worker, times the deliveries; returns deliveries/s. */
  async function drain(workload: 'broadcast' | 'single', kind: QueueBackendKind): Promise<number> {
    const prefix = `hfbench-${scratch.runId}-${prefixes.length}`;
    prefixes.push(prefix);
    const env = {
      REDIS_URL: redisUrl,
      DATABASE_URL: scratch.dbUrl,
      HOOKFLEET_QUEUE_BACKEND: kind,
      HOOKFLEET_QUEUE_PREFIX: prefix,
      HOOKFLEET_CONCURRENCY: String(concurrency),
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'warn',
    };
    const config = loadConfig(env);
    const backend = createQueueBackend(config, kind, { databaseUrl: scratch.dbUrl });
    const producer = new Producer({ config, dbClient: db!, backend });
    try {
      await producer.messagesQueue.pause();
      const sends =
        workload === 'broadcast'
          ? Array.from({ length: n / 100 }, (_, m) => ({ n: m }))
          : Array.from({ length: n }, (_, m) => ({ n: m, endpointIds: [endpointIds[m % 100]!] }));
      for (let i = 0; i < sends.length; i += 50) {
        await Promise.all(
          sends
            .slice(i, i + 50)
            .map(({ n: m, ...rest }) =>
              producer.send({ eventType: 'bench', payload: { n: m, pad: PAD }, ...rest }),
            ),
        );
      }
      await receiver.reset();
      const worker = await startHookfleetWorker(env);
      try {
        const started = performance.now();
        await producer.messagesQueue.resume();
        while ((await receiver.received()) < n) {
          if (performance.now() - started > 600_000)
            throw new Error(`${workload} on ${kind}: not drained`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return Math.round(n / ((performance.now() - started) / 1000));
      } finally {
        await worker.stop();
      }
    } finally {
      await producer.close();
      await backend.close();
    }
  }
}
