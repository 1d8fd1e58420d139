/**
 * The load of the API benchmarks: keeps `inFlight` POST /v1/messages going against
 * running `hookfleet api` processes, each message to one endpoint with a ~1 KiB payload, and
 * measures what the api costs as well as what it does. Requests per second depend on whatever
 * else the machine runs; CPU milliseconds per request of the api processes (read from
 * /proc/<pid>/stat over the measured window) hardly do, so the two together survive a noisy
 * machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type postgres from 'postgres';
import { Pool } from 'undici';

export interface ApiLoadOptions {
  /** Ports of the api processes; requests are spread over them round-robin. */
  ports: number[];
  /** Process ids of the api processes, whose CPU time is measured. */
  apiPids: number[];
  endpointIds: string[];
  apiKey: string;
  /** Requests in flight. Default 64. */
  inFlight?: number;
  /** Measured seconds. Default 8. */
  seconds?: number;
  /** Unmeasured seconds before (JIT, connections, pools). Default 1. */
  warmUpSeconds?: number;
  /**
   * More CPU to account per request, by name: each function resolves with the CPU seconds used
   * so far by something else the requests keep busy (PostgreSQL backends, the Redis server).
   */
  otherCpu?: Record<string, () => Promise<number>>;
  log?: (line: string) => void;
}

export interface ApiLoadResult {
  requestsPerSecond: number;
  errors: number;
  concurrency: number;
  /** CPU time (user + system) of the api processes per accepted request, ms. */
  apiCpuMsPerRequest: number;
  /** CPU the api processes used over the window, in cores (1 = one core busy). */
  apiCores: number;
  /** Share of the whole machine's CPU that was busy over the window, 0..1. */
  machineBusy: number;
  latencyMs: { p50: number; p99: number };
  /** CPU ms per accepted request of this load generator and of each of `otherCpu`. */
  otherCpuMsPerRequest: Record<string, number>;
}

const PAYLOAD_PAD = 'x'.repeat(1000); // ~1 KiB bodies, as in the delivery bench
/** Linux reports process CPU times in clock ticks, 100 per second on every common kernel. */
const TICKS_PER_SECOND = 100;

export async function loadApi(options: ApiLoadOptions): Promise<ApiLoadResult> {
  const inFlight = options.inFlight ?? 64;
  const seconds = options.seconds ?? 8;
  const warmUpSeconds = options.warmUpSeconds ?? 1;
  const log = options.log ?? (() => {});
  const { endpointIds } = options;
  const pools = options.ports.map(
    (port) =>
      new Pool(`http://127.0.0.1:${port}`, {
        connections: Math.ceil(inFlight / options.ports.length),
      }),
  );
  const body = (k: number) =>
    JSON.stringify({
      eventType: 'bench',
      payload: { n: k, pad: PAYLOAD_PAD },
      endpointIds: [endpointIds[k % endpointIds.length]],
    });
  let measuring = false;
  let accepted = 0;
  let errors = 0;
  const latencies: number[] = [];
  let cpuBefore = 0;
  let machineBefore = machineTicks();
  let started = 0;
  const others = {
    loadGenerator: () => Promise.resolve(cpuSeconds(process.cpuUsage())),
    ...options.otherCpu,
  };
  let othersBefore: Promise<Record<string, number>> = Promise.resolve({});
  const warmUpEnd = performance.now() + warmUpSeconds * 1000;
  const deadline = warmUpEnd + seconds * 1000;
  const startMeasuring = () => {
    measuring = true;
    cpuBefore = sumCpuTicks(options.apiPids);
    machineBefore = machineTicks();
    started = performance.now();
    othersBefore = sampleAll(others);
  };
  const warmUp = setTimeout(startMeasuring, warmUpSeconds * 1000);
  log(
    `api: POST /v1/messages with ${inFlight} in flight to ${pools.length} api process(es), ${warmUpSeconds} s warm-up + ${seconds} s`,
  );
  try {
    await Promise.all(
      Array.from({ length: inFlight }, async (_, lane) => {
        for (let k = lane; performance.now() < deadline; k += inFlight) {
          const sentAt = performance.now();
          const response = await pools[k % pools.length]!.request({
            path: '/v1/messages',
            method: 'POST',
            headers: {
              authorization: `Bearer ${options.apiKey}`,
              'content-type': 'application/json',
            },
            body: body(k),
          });
          if (response.statusCode === 202) {
            await response.body.dump();
            if (measuring) {
              accepted += 1;
              latencies.push(performance.now() - sentAt);
            }
          } else {
            errors += 1;
            if (errors <= 3)
              log(`  api: HTTP ${response.statusCode} ${await response.body.text()}`);
            else await response.body.dump();
          }
        }
      }),
    );
  } finally {
    clearTimeout(warmUp);
    await Promise.all(pools.map((pool) => pool.close()));
  }
  if (!measuring) startMeasuring(); // a run shorter than its warm-up: nothing was measured
  const elapsedS = (performance.now() - started) / 1000;
  const cpuS = (sumCpuTicks(options.apiPids) - cpuBefore) / TICKS_PER_SECOND;
  const machine = machineTicks();
  const [before, after] = [await othersBefore, await sampleAll(others)];
  const otherCpuMsPerRequest = Object.fromEntries(
    Object.keys(others).map((name) => [
      name,
      round(((after[name]! - before[name]!) * 1000) / Math.max(1, accepted), 3),
    ]),
  );
  const total = machine.total - machineBefore.total;
  latencies.sort((a, b) => a - b);
  const pick = (q: number) =>
    round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN, 1);
  const result: ApiLoadResult = {
    requestsPerSecond: Math.round(accepted / elapsedS),
    errors,
    concurrency: inFlight,
    apiCpuMsPerRequest: round((cpuS * 1000) / Math.max(1, accepted), 3),
    apiCores: round(cpuS / elapsedS, 2),
    machineBusy: round(total > 0 ? 1 - (machine.idle - machineBefore.idle) / total : NaN, 2),
    latencyMs: { p50: pick(0.5), p99: pick(0.99) },
    otherCpuMsPerRequest,
  };
  log(
    `api: ${result.requestsPerSecond} requests/s accepted, ${errors} errors, ${result.apiCpuMsPerRequest} api CPU ms/request (${result.apiCores} cores; machine ${Math.round(result.machineBusy * 100)}% busy), p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms`,
  );
  log(
    `  other CPU ms/request: ${Object.entries(otherCpuMsPerRequest)
      .map(([name, ms]) => `${name} ${ms}`)
      .join(', ')}`,
  );
  return result;
}

/** Reads every CPU source at once; before and after a run, the difference is its cost. */
export async function sampleAll(
  sources: Record<string, () => Promise<number>>,
): Promise<Record<string, number>> {
  const entries = await Promise.all(
    Object.entries(sources).map(async ([name, sample]) => [name, await sample()] as const),
  );
  return Object.fromEntries(entries);
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

/** CPU seconds (user + system) the processes used so far; for PostgreSQL backends and the like. */
export function processCpuSeconds(pids: number[]): number {
  return sumCpuTicks(pids.filter((pid) => existsSync(`/proc/${pid}/stat`))) / TICKS_PER_SECOND;
}

/**
 * Read or write system calls so far of the processes (/proc/<pid>/io `syscr`, `syscw`): each
 * socket read and write is one, and on a sandboxed kernel each costs tens of microseconds, a large
 * part of a small request's CPU; batching shows here first.
 */
export function processSyscalls(pids: number[], kind: 'syscr' | 'syscw'): number {
  let calls = 0;
  for (const pid of pids) {
    try {
      const io = readFileSync(`/proc/${pid}/io`, 'utf8');
      calls += Number(new RegExp(`${kind}: (\\d+)`).exec(io)?.[1] ?? 0);
    } catch {
      // The process has exited: its calls are no longer counted, as with its CPU.
    }
  }
  return calls;
}

/** CPU seconds so far of the PostgreSQL backends connected to `database` (every api and worker connection). */
export function postgresCpu(admin: postgres.Sql, database: string): () => Promise<number> {
  return async () => {
    const rows = await admin<{ pid: number }[]>`
      select pid from pg_stat_activity where datname = ${database}`;
    return processCpuSeconds(rows.map((row) => row.pid));
  };
}

/** CPU seconds so far of the whole Redis server, so whatever else uses it counts too. */
export function redisServerCpu(redis: Redis): () => Promise<number> {
  return async () => {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
    return field('used_cpu_user') + field('used_cpu_sys');
  };
}

/** utime + stime of the processes, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function sumCpuTicks(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after it are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks;
}

/** The machine's CPU time, all cores, and its idle part (first line of /proc/stat). */
function machineTicks(): { total: number; idle: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  const values = fields.map(Number);
  // idle + iowait count as idle; guest times are already inside user and nice.
  const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: (values[3] ?? 0) + (values[4] ?? 0) };
}

function round(value: number, digits: number): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}
