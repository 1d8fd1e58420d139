/**
 * API benchmark: `npm run bench -- api [--api-processes N] [--workers N] [--seconds N]
 * [--in-flight N] [--endpoints N]`. Loads only `hookfleet api` processes with POST /v1/messages
 * (bench/apiLoad.ts: one endpoint per message, ~1 KiB payloads) and reports requests/s and the
 * api's CPU ms per request. With `--workers N` it also runs N `hookfleet worker` processes that
 * deliver to a receiver process meanwhile, as the delivery benchmark's api line does; without,
 * the jobs just pile up in Redis (and are deleted at the end).
 *
 * BENCH_API_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles the api processes.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createDbClient, type DbClient } from '../src/db/client.js';
import { insertEndpoint } from '../src/db/endpoints.js';
import { runMigrations } from '../src/db/migrate.js';
import { freePort } from '../test/helpers/freePort.js';
import {
  loadApi,
  postgresCpu,
  processCpuSeconds,
  redisServerCpu,
  type ApiLoadResult,
} from './apiLoad.js';
import {
  startHookfleetProcess,
  startHookfleetWorker,
  startReceiverProcess,
  type ReceiverProcess,
  type WorkerHandle,
} from './delivery.js';
import { createBenchScratch } from './scratch.js';

export interface ApiBenchOptions {
  /** `hookfleet api` processes, each on a port of its own. Default 1. */
  apiProcesses?: number;
  /** `hookfleet worker` processes delivering meanwhile. Default 0 (jobs stay queued). */
  workers?: number;
  /** Endpoints messages are spread over. Default 100. */
  endpoints?: number;
  /** Requests in flight. Default 64. */
  inFlight?: number;
  /** Measured seconds. Default 8. */
  seconds?: number;
  redisUrl?: string;
  /** A PostgreSQL URL allowed to create databases. Default postgres://root@127.0.0.1:5432/postgres. */
  adminUrl?: string;
  log?: (line: string) => void;
}

export interface ApiBenchResult extends ApiLoadResult {
  apiProcesses: number;
  workers: number;
}

const API_KEY = 'bench-key';

export async function runApiBench(options: ApiBenchOptions = {}): Promise<ApiBenchResult> {
  const apiProcesses = options.apiProcesses ?? 1;
  const workers = options.workers ?? 0;
  const endpoints = options.endpoints ?? 100;
  const log = options.log ?? (() => {});
  const scratch = await createBenchScratch(options);
  const { redisUrl } = scratch;
  const { runId, dbName, dbUrl, admin } = scratch;
  const prefix = `hfbench-${runId}-api`;
  const handles: WorkerHandle[] = [];
  let receiver: ReceiverProcess | undefined;
  let db: DbClient | undefined;
  try {
    await runMigrations(dbUrl);
    db = createDbClient(dbUrl);
    receiver = workers > 0 ? await startReceiverProcess() : undefined;
    const url = receiver ? `http://127.0.0.1:${receiver.port}` : 'http://127.0.0.1:9';
    const endpointIds: string[] = [];
    for (let i = 0; i < endpoints; i++) {
      endpointIds.push((await insertEndpoint(db.db, { url: `${url}/e/${i}` })).id);
    }
    const env = {
      REDIS_URL: redisUrl,
      DATABASE_URL: dbUrl,
      HOOKFLEET_QUEUE_PREFIX: prefix,
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
      HOOKFLEET_API_KEYS: API_KEY,
      HOOKFLEET_ADMIN_USER: 'bench',
      HOOKFLEET_ADMIN_PASSWORD: randomBytes(12).toString('hex'),
    };
    const workerPids: number[] = [];
    for (let i = 0; i < workers; i++) {
      const worker = await startHookfleetWorker(env);
      handles.push(worker);
      workerPids.push(worker.pid);
    }
    const ports: number[] = [];
    const apiPids: number[] = [];
    const nodeArgs = (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean);
    for (let i = 0; i < apiProcesses; i++) {
      const port = await freePort();
      const api = await startHookfleetProcess(
        'api',
        { ...env, PORT: String(port) },
        '"msg":"api listening"',
        nodeArgs,
      );
      handles.push(api);
      ports.push(port);
      apiPids.push(api.pid);
    }
    const redis = new Redis(redisUrl);
    const result = await loadApi({
      ports,
      apiPids,
      endpointIds,
      apiKey: API_KEY,
      otherCpu: {
        ...(receiver && {
          workers: () => Promise.resolve(processCpuSeconds(workerPids)),
          receiver: () => Promise.resolve(processCpuSeconds([receiver!.pid])),
        }),
        postgres: postgresCpu(admin, dbName),
        redis: redisServerCpu(redis),
      },
      ...(options.inFlight !== undefined && { inFlight: options.inFlight }),
      ...(options.seconds !== undefined && { seconds: options.seconds }),
      log,
    });
    await redis.quit();
    return { ...result, apiProcesses, workers };
  } finally {
    await Promise.all(handles.map((h) => h.stop()));
    await receiver?.stop();
    await db?.close();
    await scratch.remove([prefix]);
  }
}
