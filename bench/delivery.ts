/**
 * Delivery benchmark (issue #6). On one machine with its Redis and PostgreSQL, against a
 * receiver in a process of its own, the same workload of N deliveries to E endpoints is drained by:
 *   1. hookfleet: the real `hookfleet worker` processes with everything on (signing, address
 *      guard with loopback allowed, attempt history, counters, success recording), measured until
 *      every delivery is received AND every endpoint's counters/last_success_at are in PostgreSQL;
 *   2. naive: a plain BullMQ worker, undici POST, one Drizzle UPDATE per delivery;
 *   3. ceiling: the same without any database write.
 * Jobs are enqueued into a paused queue and the clock starts when every worker is ready and the
 * queue resumes, so process start-up is not measured. Then, with hookfleet workers running, a
 * fixed offered load measures end-to-end latency (enqueue to receipt).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import type postgres from 'postgres';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { createDbClient, type DbClient } from '../src/db/client.js';
import { insertEndpoint } from '../src/db/endpoints.js';
import { runMigrations } from '../src/db/migrate.js';
import { DELIVERIES_QUEUE } from '../src/jobs.js';
import { Producer } from '../src/producer/producer.js';
import { freePort } from '../test/helpers/freePort.js';
import {
  loadApi,
  postgresCpu,
  processCpuSeconds,
  redisServerCpu,
  sampleAll,
  type ApiLoadResult,
} from './apiLoad.js';
import { createBenchScratch } from './scratch.js';

export interface DeliveryBenchOptions {
  /** Deliveries per throughput run. Default 20,000. */
  deliveries?: number;
  /** Endpoints, all on the one receiver. Default 100. */
  endpoints?: number;
  /** Worker processes per run. Default 2 (one per core of this machine). */
  workers?: number;
  /** Deliveries in flight per worker process. Default 50. */
  concurrency?: number;
  /** Offered load for the latency run, deliveries/s. Default 1000. */
  offeredPerSecond?: number;
  /** Length of the latency run. Default 10 s. */
  latencySeconds?: number;
  redisUrl?: string;
  /** A PostgreSQL URL allowed to create databases. Default postgres://root@127.0.0.1:5432/postgres. */
  adminUrl?: string;
  log?: (line: string) => void;
}

export interface DeliveryBenchResult {
  deliveries: number;
  endpoints: number;
  workers: number;
  concurrency: number;
  deliveriesPerSecond: { hookfleet: number; naive: number; ceiling: number };
  ratios: { hookfleetToNaive: number; hookfleetToCeiling: number };
  /** Where each mode's CPU goes, per delivery: the figure that explains the ratios. */
  cpuMsPerDelivery: { hookfleet: CpuBreakdown; naive: CpuBreakdown; ceiling: CpuBreakdown };
  latencyMs: {
    offeredPerSecond: number;
    /** Seconds of the same load offered first and not sampled (start-up is not the steady state). */
    warmUpSeconds: number;
    p50: number;
    p95: number;
    p99: number;
    max: number;
    samples: number;
    /** p99 of each second of samples in arrival order: shows whether the tail is start-up or steady. */
    p99BySecond: number[];
  };
  enqueuePerSecond: {
    libraryFanOut: number;
    /** Deliveries enqueued first by a producer of the same process, and not timed. */
    warmUpDeliveries: number;
  };
  /** POST /v1/messages to one endpoint each, against `hookfleet api`, with workers delivering. */
  api: ApiLoadResult;
  workerPeakRssMiB: number;
  /**
   * The hookfleet run's largest worker RSS in each fifth of its deliveries (by deliveries
   * received): growth across a run shows here, and with --deliveries 200000 across a long one.
   */
  workerRssByFifthMiB: number[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What docker-compose.yml and README (Operations) give workers: peak RSS ~158 MiB instead of ~207. */
const WORKER_NODE_OPTIONS = '--max-old-space-size=2000';
const PAYLOAD_PAD = 'x'.repeat(1000); // ~1 KiB bodies
/**
 * Load offered before latency samples are taken. A freshly started worker spends its first
 * seconds compiling (event-loop stalls of 60-400 ms measured on the 2-core VM with
 * monitorEventLoopDelay); with 2 s of warm-up that backlog filled the first sampled second (p50
 * 235 ms, p99 418 ms) while every later second had a p99 of 49-79 ms. p99BySecond shows it.
 */
const LATENCY_WARM_UP_SECONDS = 5;
/**
 * Deliveries enqueued before the enqueue rate is timed. Measured cold, the first 20,000 ran at
 * 15,000-17,500/s while the same producer's next 20,000 ran at 17,000-22,300/s (JIT, first
 * connections).
 */
const ENQUEUE_WARM_UP_DELIVERIES = 10_000;

export async function runDeliveryBench(
  options: DeliveryBenchOptions = {},
): Promise<DeliveryBenchResult> {
  return (await runDelivery(options)) as DeliveryBenchResult;
}

export interface WorkerScalingRun {
  workers: number;
  deliveriesPerSecond: number;
  /** deliveries/s over the same run's with one worker process. */
  speedUp: number;
  cpuMsPerDelivery: CpuBreakdown;
  /** PostgreSQL transactions committed per 1,000 deliveries (the recorder's batches and reads). */
  postgresCommitsPer1000: number;
  /** Rows PostgreSQL inserted and updated per delivery (attempt history, endpoint counters). */
  postgresRowsPerDelivery: number;
}

export interface WorkerScalingResult {
  deliveries: number;
  endpoints: number;
  concurrency: number;
  /** One entry per run, in the order run (1, 2, 4, then 4, 2, 1: drift in the machine's load shows). */
  runs: WorkerScalingRun[];
}

/**
 * hookfleet alone (no baselines) with 1, 2 and 4 worker processes, each on the same workload,
 * run twice in mirrored order; CPU of every process per delivery, and PostgreSQL's writes.
 */
export async function runWorkerScalingBench(
  options: DeliveryBenchOptions & { workerCounts?: number[] } = {},
): Promise<WorkerScalingResult> {
  const counts = options.workerCounts ?? [1, 2, 4];
  return (await runDelivery({
    ...options,
    workerCounts: [...counts, ...[...counts].reverse()],
  })) as WorkerScalingResult;
}

async function runDelivery(
  options: DeliveryBenchOptions & { workerCounts?: number[] },
): Promise<DeliveryBenchResult | WorkerScalingResult> {
  const n = options.deliveries ?? 20_000;
  const e = options.endpoints ?? 100;
  const workers = options.workers ?? 2;
  const concurrency = options.concurrency ?? 50;
  const offered = options.offeredPerSecond ?? 1000;
  const latencySeconds = options.latencySeconds ?? 10;
  const log = options.log ?? (() => {});
  const scratch = await createBenchScratch(options);
  const { redisUrl } = scratch;
  const { runId, dbName, dbUrl, admin } = scratch;
  const prefixes: string[] = [];
  const receiver = await startReceiverProcess();
  let db: DbClient | undefined;
  try {
    await runMigrations(dbUrl);
    db = createDbClient(dbUrl);
    const endpointIds: string[] = [];
    for (let i = 0; i < e; i++) {
      endpointIds.push(
        (await insertEndpoint(db.db, { url: `http://127.0.0.1:${receiver.port}/e/${i}` })).id,
      );
    }
    const newPrefix = () => {
      const prefix = `hfbench-${runId}-${prefixes.length}`;
      prefixes.push(prefix);
      return prefix;
    };
    const workerEnv = (prefix: string) => ({
      REDIS_URL: redisUrl,
      DATABASE_URL: dbUrl,
      HOOKFLEET_QUEUE_PREFIX: prefix,
      HOOKFLEET_CONCURRENCY: String(concurrency),
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: 'warn',
    });

    // 1. hookfleet, enqueued with the library's fan-out (which is also the enqueue measurement).
    /** Sends `messages` messages, 10 at a time, each fanned out to every endpoint. */
    const fanOut = async (producer: Producer, messages: number) => {
      for (let m = 0; m < messages; m += 10) {
        await Promise.all(
          Array.from({ length: Math.min(10, messages - m) }, (_, j) =>
            producer.send({ eventType: 'bench', payload: { n: m + j, pad: PAYLOAD_PAD } }),
          ),
        );
      }
    };
    // A producer is long-lived, so its enqueue rate is measured warm: this process first sends
    // ENQUEUE_WARM_UP_DELIVERIES through a producer of its own, to a queue no worker reads.
    if (options.workerCounts) {
      const runs: Omit<WorkerScalingRun, 'speedUp'>[] = [];
      for (const count of options.workerCounts) {
        const prefix = newPrefix();
        const producer = new Producer({ config: loadConfig(workerEnv(prefix)), dbClient: db });
        await producer.messagesQueue.pause();
        await fanOut(producer, n / e);
        const pgBefore = await postgresWrites(admin, dbName);
        const start = () =>
          Promise.all(Array.from({ length: count }, () => startHookfleetWorker(workerEnv(prefix))));
        const successesBefore = await db.sql<{ s: number }[]>`
          select coalesce(min(success_count), 0)::int as s from endpoints`;
        const target = successesBefore[0]!.s + n / e;
        const run = await drain(`${count} worker(s)`, producer.messagesQueue, start, async () => {
          const [row] = await db!.sql<{ done: number }[]>`
            select count(*)::int as done from endpoints where success_count >= ${target}`;
          return row!.done === e;
        });
        // PostgreSQL reports its counters when a backend's transaction ends, within a second.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const pgAfter = await postgresWrites(admin, dbName);
        await producer.close();
        runs.push({
          workers: count,
          deliveriesPerSecond: run.perSecond,
          cpuMsPerDelivery: run.cpuMsPerDelivery,
          postgresCommitsPer1000: round(((pgAfter.commits - pgBefore.commits) * 1000) / n, 1),
          postgresRowsPerDelivery: round((pgAfter.rows - pgBefore.rows) / n, 2),
        });
      }
      const one = runs.filter((r) => r.workers === 1).map((r) => r.deliveriesPerSecond);
      const base = one.reduce((a, b) => a + b, 0) / Math.max(1, one.length);
      return {
        deliveries: n,
        endpoints: e,
        concurrency,
        runs: runs.map((r) => ({ ...r, speedUp: round(r.deliveriesPerSecond / base, 2) })),
      };
    }
    const warmUpMessages = Math.ceil(ENQUEUE_WARM_UP_DELIVERIES / e);
    const warmUp = new Producer({ config: loadConfig(workerEnv(newPrefix())), dbClient: db });
    await fanOut(warmUp, warmUpMessages);
    await warmUp.close();
    const hookfleetPrefix = newPrefix();
    const producer = new Producer({ config: loadConfig(workerEnv(hookfleetPrefix)), dbClient: db });
    await producer.messagesQueue.pause();
    log(`enqueueing ${n} deliveries (${n / e} messages x ${e} endpoints) with Producer.send`);
    const enqueueStarted = performance.now();
    await fanOut(producer, n / e);
    const libraryFanOut = n / ((performance.now() - enqueueStarted) / 1000);
    const startHookfleet = () =>
      Promise.all(
        Array.from({ length: workers }, () => startHookfleetWorker(workerEnv(hookfleetPrefix))),
      );
    const hookfleet = await drain('hookfleet', producer.messagesQueue, startHookfleet, async () => {
      const [row] = await db!.sql<{ done: number }[]>`
        select count(*)::int as done from endpoints where success_count >= ${n / e} and last_success_at is not null`;
      return row!.done === e;
    });
    await producer.close();

    // 2 and 3: the baselines, on the same jobs.
    const baseline = async (mode: 'naive' | 'ceiling') => {
      const prefix = newPrefix();
      const queue = new Queue(DELIVERIES_QUEUE, { connection: { url: redisUrl }, prefix });
      await queue.pause();
      for (let i = 0; i < n; i += 1000) {
        await queue.addBulk(
          Array.from({ length: Math.min(1000, n - i) }, (_, j) => {
            const k = i + j;
            return {
              name: 'deliver',
              data: {
                url: `http://127.0.0.1:${receiver.port}/e/${k % e}`,
                endpointId: endpointIds[k % e]!,
                body: JSON.stringify({ n: k, pad: PAYLOAD_PAD }),
              },
            };
          }),
        );
      }
      const startBaseline = () =>
        Promise.all(
          Array.from({ length: workers }, () =>
            startBaselineWorker(mode, {
              REDIS_URL: redisUrl,
              DATABASE_URL: dbUrl,
              QUEUE_PREFIX: prefix,
              CONCURRENCY: String(concurrency),
            }),
          ),
        );
      const result = await drain(
        mode,
        queue,
        startBaseline,
        async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= n,
      );
      await queue.close();
      return result;
    };
    const naive = await baseline('naive');
    const ceiling = await baseline('ceiling');

    // Latency at a fixed offered load, hookfleet workers already running.
    const latency = await measureLatency(newPrefix());
    const api = await measureApi(newPrefix());

    return {
      deliveries: n,
      endpoints: e,
      workers,
      concurrency,
      deliveriesPerSecond: {
        hookfleet: hookfleet.perSecond,
        naive: naive.perSecond,
        ceiling: ceiling.perSecond,
      },
      ratios: {
        hookfleetToNaive: round(hookfleet.perSecond / naive.perSecond, 2),
        hookfleetToCeiling: round(hookfleet.perSecond / ceiling.perSecond, 2),
      },
      cpuMsPerDelivery: {
        hookfleet: hookfleet.cpuMsPerDelivery,
        naive: naive.cpuMsPerDelivery,
        ceiling: ceiling.cpuMsPerDelivery,
      },
      latencyMs: latency,
      enqueuePerSecond: {
        libraryFanOut: Math.round(libraryFanOut),
        warmUpDeliveries: warmUpMessages * e,
      },
      api,
      workerPeakRssMiB: Math.max(hookfleet.peakRssMiB, latency.peakRssMiB),
      workerRssByFifthMiB: hookfleet.rssByFifthMiB,
    };

    /** Starts the workers on a paused queue, resumes it, and times until `done()` holds. */
    async function drain(
      name: string,
      queue: Queue,
      start: () => Promise<WorkerHandle[]>,
      done: () => Promise<boolean>,
    ): Promise<DrainResult> {
      await receiver.reset();
      const handles = await start();
      const cpu = cpuMeter(handles.map((h) => h.pid));
      let seconds: number;
      let cpuMsPerDelivery: CpuBreakdown;
      const rssByFifthMiB: number[] = [];
      try {
        await cpu.start();
        const started = performance.now();
        await queue.resume();
        let lastReport = started;
        let lastRssSample = 0;
        for (;;) {
          const received = await receiver.received();
          if (performance.now() - lastRssSample >= 100) {
            lastRssSample = performance.now();
            const fifth = Math.min(4, Math.floor((5 * received) / n));
            const rss = Math.max(...handles.map((h) => h.rssMiB()));
            rssByFifthMiB[fifth] = Math.max(rssByFifthMiB[fifth] ?? 0, rss);
          }
          if (received >= n && (await done())) break;
          if (performance.now() - lastReport > 2000) {
            lastReport = performance.now();
            log(`  ${name}: ${received}/${n} received`);
          }
          if (performance.now() - started > 600_000)
            throw new Error(`${name}: not drained after 10 minutes`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        seconds = (performance.now() - started) / 1000;
        cpuMsPerDelivery = await cpu.msPer(n);
      } finally {
        await cpu.close();
      }
      const peakRssMiB = Math.max(...handles.map((h) => h.peakRssMiB()));
      await Promise.all(handles.map((h) => h.stop()));
      const perSecond = Math.round(n / seconds);
      // A fifth shorter than the 100 ms sampling interval has no sample: NaN (null in --json).
      const byFifth = Array.from({ length: 5 }, (_, i) => rssByFifthMiB[i] ?? NaN);
      log(
        `${name}: ${n} deliveries in ${seconds.toFixed(2)} s = ${perSecond}/s; CPU ms/delivery ${formatCpu(cpuMsPerDelivery)}; peak worker RSS ${peakRssMiB} MiB (largest in each fifth of the run: ${byFifth.join(' ')})`,
      );
      return { perSecond, peakRssMiB, rssByFifthMiB: byFifth, cpuMsPerDelivery };
    }

    /** CPU seconds so far of the workers, the receiver, this run's PostgreSQL backends and Redis. */
    function cpuSources(workerPids: number[], redis: Redis) {
      return {
        workers: () => Promise.resolve(processCpuSeconds(workerPids)),
        receiver: () => Promise.resolve(processCpuSeconds([receiver.pid])),
        postgres: postgresCpu(admin, dbName),
        redis: redisServerCpu(redis),
      };
    }

    /**
     * CPU time of the workers, the receiver, PostgreSQL's backends and Redis over a run, per
     * delivery: where the machine's two cores go, the figure to compare between the three modes.
     */
    function cpuMeter(workerPids: number[]) {
      const redis = new Redis(redisUrl);
      const sources = cpuSources(workerPids, redis);
      let before: Record<string, number> = {};
      return {
        async start() {
          before = await sampleAll(sources);
        },
        async msPer(count: number): Promise<CpuBreakdown> {
          const after = await sampleAll(sources);
          const per = (k: string) => round(((after[k]! - before[k]!) * 1000) / count, 3);
          return {
            workers: per('workers'),
            receiver: per('receiver'),
            postgres: per('postgres'),
            redis: per('redis'),
          };
        },
        close: () =>
          redis.quit().then(
            () => {},
            () => redis.disconnect(),
          ),
      };
    }

    /** Keeps 64 POST /v1/messages in flight against a `hookfleet api` process for 8 s (bench/apiLoad.ts). */
    async function measureApi(prefix: string): Promise<ApiLoadResult> {
      const port = await freePort();
      const env = { ...workerEnv(prefix), PORT: String(port), HOOKFLEET_API_KEYS: 'bench-key' };
      const handles = await Promise.all(
        Array.from({ length: workers }, () => startHookfleetWorker(env)),
      );
      const workerPids = handles.map((h) => h.pid);
      const api = await startHookfleetProcess('api', env, '"msg":"api listening"');
      handles.push(api);
      const redis = new Redis(redisUrl);
      try {
        return await loadApi({
          ports: [port],
          apiPids: [api.pid],
          endpointIds,
          apiKey: 'bench-key',
          inFlight: 64,
          seconds: 8,
          otherCpu: cpuSources(workerPids, redis),
          log,
        });
      } finally {
        await redis.quit();
        await Promise.all(handles.map((h) => h.stop()));
      }
    }

    async function measureLatency(prefix: string) {
      const env = workerEnv(prefix);
      const handles = await Promise.all(
        Array.from({ length: workers }, () => startHookfleetWorker(env)),
      );
      const latencyProducer = new Producer({ config: loadConfig(env), dbClient: db! });
      await receiver.reset();
      const perMessage = 10; // each message fans out to 10 endpoints
      const messagesPerTick = offered / perMessage / 100; // 10 ms ticks
      // The first second or two measure start-up (JIT, connections, caches, endpoint limits
      // learning each receiver), not the steady state: that load is offered but not sampled.
      const warmUp = Math.round(offered * LATENCY_WARM_UP_SECONDS);
      const total = warmUp + Math.round(offered * latencySeconds);
      log(
        `latency: offering ${offered} deliveries/s for ${LATENCY_WARM_UP_SECONDS} s (warm-up, not sampled) + ${latencySeconds} s`,
      );
      let sent = 0;
      let carry = 0;
      const started = performance.now();
      const inFlight: Promise<unknown>[] = [];
      for (let tick = 0; sent < total; tick++) {
        carry += messagesPerTick;
        for (; carry >= 1 && sent < total; carry -= 1, sent += perMessage) {
          const offset = (sent / perMessage) % (e / perMessage);
          const ids = endpointIds.slice(offset * perMessage, offset * perMessage + perMessage);
          inFlight.push(
            latencyProducer.send({
              eventType: 'bench',
              // Only payloads that start with sentAtMs are sampled (bench/receiver.ts).
              payload:
                sent < warmUp
                  ? { warmUp: true, sentAtMs: Date.now(), pad: PAYLOAD_PAD }
                  : { sentAtMs: Date.now(), pad: PAYLOAD_PAD },
              endpointIds: ids,
            }),
          );
        }
        const nextTickAt = started + (tick + 1) * 10;
        await new Promise((resolve) =>
          setTimeout(resolve, Math.max(0, nextTickAt - performance.now())),
        );
      }
      await Promise.all(inFlight);
      while ((await receiver.received()) < total)
        await new Promise((resolve) => setTimeout(resolve, 20));
      const arrivals = await receiver.latencies();
      // Samples arrive about `offered` a second: each slice of that many is one second's p99.
      const p99BySecond: number[] = [];
      for (let i = 0; i + offered <= arrivals.length; i += offered) {
        const second = arrivals.slice(i, i + offered).sort((a, b) => a - b);
        p99BySecond.push(second[Math.floor(0.99 * second.length)]!);
      }
      const samples = arrivals.sort((a, b) => a - b);
      const peakRssMiB = Math.max(...handles.map((h) => h.peakRssMiB()));
      await Promise.all(handles.map((h) => h.stop()));
      await latencyProducer.close();
      const pick = (q: number) =>
        samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
      return {
        offeredPerSecond: offered,
        warmUpSeconds: LATENCY_WARM_UP_SECONDS,
        p50: pick(0.5),
        p95: pick(0.95),
        p99: pick(0.99),
        max: samples[samples.length - 1] ?? NaN,
        samples: samples.length,
        p99BySecond,
        peakRssMiB,
      };
    }
  } finally {
    await receiver.stop();
    await db?.close();
    await scratch.remove(prefixes);
  }
}

export interface WorkerHandle {
  /** Process id, for reading its CPU time from /proc. */
  pid: number;
  /** Peak resident set (VmHWM) of the process so far. */
  peakRssMiB(): number;
  /** Resident set (VmRSS) of the process now. */
  rssMiB(): number;
  stop(): Promise<void>;
}

/** A memory figure of /proc/<pid>/status, in MiB. */
function statusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024);
}

function handleFor(child: ChildProcess): WorkerHandle {
  const exited = once(child, 'exit');
  return {
    pid: child.pid!,
    peakRssMiB: () => statusMiB(child.pid!, 'VmHWM'),
    rssMiB: () => statusMiB(child.pid!, 'VmRSS'),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The real `hookfleet worker`, from dist/ when built (as in production), else through tsx; with
 * the heap cap README (Operations) and docker-compose.yml give workers.
 */
export function startHookfleetWorker(
  env: Record<string, string>,
  root = ROOT,
): Promise<WorkerHandle> {
  const nodeOptions = [process.env.NODE_OPTIONS, WORKER_NODE_OPTIONS].filter(Boolean).join(' ');
  return startHookfleetProcess(
    'worker',
    { ...env, NODE_OPTIONS: nodeOptions },
    '"msg":"worker started"',
    undefined,
    root,
  );
}

/** A `hookfleet <command>` process; resolves once it logged `readyLine`. */
export async function startHookfleetProcess(
  command: string,
  env: Record<string, string>,
  readyLine: string,
  // BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles the workers (where the time goes).
  nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean),
  /** The checkout to run it from: another one measures a change side by side (fan-out workloads). */
  root = ROOT,
): Promise<WorkerHandle> {
  const built = `${root}dist/cli/main.js`;
  const args = existsSync(built)
    ? [...nodeArgs, built, command]
    : [...nodeArgs, '--import', 'tsx', `${root}src/cli/main.ts`, command];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.includes(readyLine)) resolve();
      // Errors (pino level 50 and up) are worth seeing in a benchmark's output.
      else if (/"level":[56]0/.test(line)) process.stderr.write(`  ${command}: ${line}\n`);
    });
    child.once('exit', (code) =>
      reject(new Error(`hookfleet ${command} exited with ${String(code)}`)),
    );
  });
  return handleFor(child);
}

/** bench/baselineWorker.ts, the naive, ceiling or per-message worker, in a process of its own. */
export async function startBaselineWorker(
  mode: 'naive' | 'ceiling' | 'per-message',
  env: Record<string, string>,
): Promise<WorkerHandle> {
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = fork(`${ROOT}bench/baselineWorker.ts`, [mode], {
    execArgv: [...nodeArgs, '--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: 'inherit',
  });
  await once(child, 'message');
  return handleFor(child);
}

export interface ReceiverProcess {
  port: number;
  pid: number;
  received(): Promise<number>;
  latencies(): Promise<number[]>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** `answerAfterMs`: a slow receiver, answering each POST that much later. Default 0. */
export async function startReceiverProcess(answerAfterMs = 0): Promise<ReceiverProcess> {
  const child = fork(`${ROOT}bench/receiver.ts`, answerAfterMs > 0 ? [String(answerAfterMs)] : [], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  });
  const ask = <T>(type: string, pick: (message: Record<string, unknown>) => T) =>
    new Promise<T>((resolve) => {
      const onMessage = (message: Record<string, unknown>) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        resolve(pick(message));
      };
      child.on('message', onMessage);
      child.send({ type });
    });
  const [ready] = (await once(child, 'message')) as [{ port: number }];
  return {
    port: ready.port,
    pid: child.pid!,
    received: () => ask('stats', (m) => m.received as number),
    latencies: () => ask('latencies', (m) => m.latenciesMs as number[]),
    reset: () => ask('reset', () => undefined),
    async stop() {
      const exited = once(child, 'exit');
      child.send({ type: 'stop' });
      await exited;
    },
  };
}

/** CPU ms per delivery by process group (redis: the whole server). */
export interface CpuBreakdown {
  workers: number;
  receiver: number;
  postgres: number;
  redis: number;
}

interface DrainResult {
  perSecond: number;
  peakRssMiB: number;
  /** Largest worker RSS sampled (every 100 ms) in each fifth of the deliveries. */
  rssByFifthMiB: number[];
  cpuMsPerDelivery: CpuBreakdown;
}

function formatCpu(cpu: CpuBreakdown): string {
  const total = cpu.workers + cpu.receiver + cpu.postgres + cpu.redis;
  return `${Object.entries(cpu)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')} (total ${round(total, 3)})`;
}

function round(value: number, digits: number): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}

/** Transactions committed and rows written so far in database `dbName` (pg_stat_database). */
async function postgresWrites(
  admin: postgres.Sql,
  dbName: string,
): Promise<{ commits: number; rows: number }> {
  const [row] = await admin<{ commits: string; rows: string }[]>`
    select xact_commit::text as commits, (tup_inserted + tup_updated)::text as rows
    from pg_stat_database where datname = ${dbName}`;
  return { commits: Number(row?.commits ?? 0), rows: Number(row?.rows ?? 0) };
}
