/**
 * Fairness between owners, and what a slow endpoint's backlog costs the others (`npm run bench --
 * fairness`). Other owners send at a fixed rate (`--rate`, over `--owners` owners with a fast
 * endpoint each) and their end-to-end latency is sampled, in four phases side by side in one run,
 * each on a fresh queue prefix with its own worker processes:
 *   1. quiet: the other owners alone;
 *   2. flood, before: one owner first queues `--flood` messages (default 20,000) to one slow
 *      endpoint (each answer takes 200 ms), then the others send; workers of the checkout given by
 *      `--before <dir>` (the code before the per-owner share and the endpoint queue places);
 *   3. flood, endpoint queue only: this checkout's workers, HOOKFLEET_OWNER_QUEUE_SHARE=0;
 *   4. flood, after: this checkout, the owner share on (its default).
 * For each: the others' p50/p99 latency (and p99 over the quiet p99), the flood's deliveries per
 * second, Redis commands per second and worker CPU (cores) while the others were sampled. Run it
 * on a Redis of its own (`--redis-url`), or Redis's figures include everyone else's commands.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { createDbClient } from '../src/db/client.js';
import { insertEndpoint } from '../src/db/endpoints.js';
import { runMigrations } from '../src/db/migrate.js';
import { Producer } from '../src/producer/producer.js';
import { processCpuSeconds } from './apiLoad.js';
import { startReceiverProcess } from './delivery.js';
import { createBenchScratch } from './scratch.js';

export interface FairnessOptions {
  /** Messages the flooding owner queues first. Default 20,000. */
  flood?: number;
  /** Messages per second the other owners send, together. Default 200. */
  rate?: number;
  /** Other owners. Default 20. */
  owners?: number;
  /** Seconds the others' latency is sampled, after 3 s of warm-up. Default 15. */
  seconds?: number;
  workers?: number;
  concurrency?: number;
  /** A checkout of the code to compare with (its workers run phase 2); none: phase 2 skipped. */
  before?: string;
  redisUrl?: string;
  adminUrl?: string;
  log?: (line: string) => void;
}

export interface FairnessPhase {
  othersP50Ms: number;
  othersP99Ms: number;
  /** othersP99Ms over the quiet phase's. */
  p99Ratio: number;
  samples: number;
  /** Others' messages that had not arrived ARRIVAL_WAIT_MS after the last was sent (not in the percentiles). */
  missing: number;
  floodDeliveriesPerSecond: number;
  redisCommandsPerSecond: number;
  workerCores: number;
}

export interface FairnessResult {
  flood: number;
  ratePerSecond: number;
  owners: number;
  slowEndpointAnswerMs: number;
  phases: Record<string, FairnessPhase>;
}

const SLOW_ANSWER_MS = 200;
const WARM_UP_SECONDS = 3;
const ARRIVAL_WAIT_MS = 120_000;
const ROOT = new URL('..', import.meta.url).pathname;

export async function runFairnessBench(options: FairnessOptions = {}): Promise<FairnessResult> {
  const flood = options.flood ?? 20_000;
  const rate = options.rate ?? 200;
  const owners = options.owners ?? 20;
  const seconds = options.seconds ?? 15;
  const workers = options.workers ?? 2;
  const concurrency = options.concurrency ?? 50;
  const log = options.log ?? (() => {});
  const scratch = await createBenchScratch(options);
  const { redisUrl } = scratch;
  const fast = await startReceiverProcess();
  const slow = await startReceiverProcess(SLOW_ANSWER_MS);
  const db = createDbClient(scratch.dbUrl);
  const redis = new Redis(redisUrl);
  const prefixes: string[] = [];
  try {
    await runMigrations(scratch.dbUrl);
    // Endpoints are shared by the phases; each phase's prefix gives it fresh limits and queues.
    const floodEndpoint = await insertEndpoint(db.db, {
      url: `http://127.0.0.1:${slow.port}/flood`,
      ownerId: 'acct_flood',
    });
    const otherOwners = Array.from({ length: owners }, (_, i) => `acct_${i}`);
    for (const ownerId of otherOwners) {
      // Raw payloads: the receiver samples bodies that start with sentAtMs (no envelope around).
      await insertEndpoint(db.db, {
        url: `http://127.0.0.1:${fast.port}/${ownerId}`,
        ownerId,
        payloadFormat: 'raw',
      });
    }

    const phase = async (name: string, root: string, floodCount: number, share?: number) => {
      const prefix = `hfbench-${scratch.runId}-${prefixes.length}`;
      prefixes.push(prefix);
      const env: Record<string, string> = {
        REDIS_URL: redisUrl,
        DATABASE_URL: scratch.dbUrl,
        HOOKFLEET_QUEUE_PREFIX: prefix,
        HOOKFLEET_CONCURRENCY: String(concurrency),
        HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
        LOG_LEVEL: 'warn',
        ...(share !== undefined && { HOOKFLEET_OWNER_QUEUE_SHARE: String(share) }),
      };
      const producer = new Producer({ config: loadConfig(env), dbClient: db });
      await producer.messagesQueue.pause();
      for (let i = 0; i < floodCount; i += 500) {
        await Promise.all(
          Array.from({ length: Math.min(500, floodCount - i) }, (_, j) =>
            producer.send({
              ownerId: 'acct_flood',
              eventType: 'flood',
              payload: { n: i + j },
              endpointIds: [floodEndpoint.id],
            }),
          ),
        );
      }
      if (floodCount > 0) log(`${name}: ${floodCount} flood messages queued`);
      const started = await Promise.all(
        Array.from({ length: workers }, () => startWorker(root, env)),
      );
      try {
        await producer.messagesQueue.resume();
        await fast.reset();
        await slow.reset();
        // Counted from here: received() then covers every one sent, warm-up included.
        let sent = 0;
        const sendOthers = async (untilMs: number) => {
          const tickMs = 10;
          while (Date.now() < untilMs) {
            const due = Math.floor((rate * (Date.now() - phaseStartMs)) / 1000);
            const batch: Promise<unknown>[] = [];
            for (; sent < due; sent++) {
              batch.push(
                producer.send({
                  ownerId: otherOwners[sent % owners]!,
                  eventType: 'other',
                  // The receiver samples latency of payloads that start with sentAtMs.
                  payload: { sentAtMs: Date.now(), n: sent },
                }),
              );
            }
            await Promise.all(batch);
            await new Promise((resolve) => setTimeout(resolve, tickMs));
          }
        };
        const phaseStartMs = Date.now();
        await sendOthers(phaseStartMs + WARM_UP_SECONDS * 1000);
        await fast.latencies(); // warm-up samples dropped
        const floodBefore = await slow.received();
        const commandsBefore = await commandsProcessed(redis);
        const cpuBefore = processCpuSeconds(started.map((w) => w.pid));
        const sampleStartMs = Date.now();
        await sendOthers(sampleStartMs + seconds * 1000);
        const elapsedS = (Date.now() - sampleStartMs) / 1000;
        const floodDone = (await slow.received()) - floodBefore;
        const commands = (await commandsProcessed(redis)) - commandsBefore;
        const cpu = processCpuSeconds(started.map((w) => w.pid)) - cpuBefore;
        // Every sampled message must arrive (its latency counts), up to ARRIVAL_WAIT_MS.
        const deadline = Date.now() + ARRIVAL_WAIT_MS;
        while ((await fast.received()) < sent) {
          if (Date.now() > deadline) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const missing = sent - (await fast.received());
        const latencies = (await fast.latencies()).sort((a, b) => a - b);
        const at = (q: number) =>
          latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
        const result = {
          othersP50Ms: at(0.5),
          othersP99Ms: at(0.99),
          p99Ratio: NaN,
          samples: latencies.length,
          missing,
          floodDeliveriesPerSecond: Math.round(floodDone / elapsedS),
          redisCommandsPerSecond: Math.round(commands / elapsedS),
          workerCores: Math.round((cpu / elapsedS) * 100) / 100,
        };
        log(`${name}: ${JSON.stringify(result)}`);
        return result;
      } finally {
        await Promise.all(started.map((w) => w.stop()));
        await producer.close();
      }
    };

    const phases: Record<string, FairnessPhase> = {};
    phases.quiet = await phase('quiet', ROOT, 0);
    if (options.before) {
      phases['flood, before'] = await phase('flood, before', options.before, flood, 0);
    }
    phases['flood, endpoint queue only'] = await phase(
      'flood, endpoint queue only',
      ROOT,
      flood,
      0,
    );
    phases['flood, after'] = await phase('flood, after', ROOT, flood);
    for (const p of Object.values(phases)) {
      p.p99Ratio = Math.round((p.othersP99Ms / phases.quiet.othersP99Ms) * 100) / 100;
    }
    return { flood, ratePerSecond: rate, owners, slowEndpointAnswerMs: SLOW_ANSWER_MS, phases };
  } finally {
    await redis.quit();
    await db.close();
    await fast.stop();
    await slow.stop();
    await scratch.remove(prefixes);
  }
}

async function commandsProcessed(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1]);
}

/** `hookfleet worker` of the checkout at `root`, through tsx; resolves once it has started. */
async function startWorker(root: string, env: Record<string, string>) {
  const main = `${root.replace(/\/$/, '')}/src/cli/main.ts`;
  if (!existsSync(main)) throw new Error(`no hookfleet checkout at ${root}`);
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'worker'], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.includes('"msg":"worker started"')) resolve();
      // Errors (pino level 50 and up) are worth seeing in a benchmark's output.
      else if (/"level":[56]0/.test(line))
        process.stderr.write(`  worker: ${line.slice(0, 400)}\n`);
    });
    child.once('exit', (code) => {
      process.stderr.write(`  worker ${child.pid} exited with ${String(code)}\n`);
      reject(new Error(`worker exited with ${String(code)}`));
    });
  });
  const exited = once(child, 'exit');
  return {
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
