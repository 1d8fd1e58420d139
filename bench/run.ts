/**
 * `npm run bench [-- delivery|sweep|api|redis-bytes|fan-out|workers|trial|fairness] [--json]
 * [--rounds N] [--deliveries N] [--endpoints N] [--workers N] [--concurrency N] [--api-processes N]
 * [--seconds N] [--in-flight N] [--compare <checkout>] [--pairs N] [--flood N] [--rate N]
 * [--owners N] [--before DIR]`: runs the benchmarks
 * (delivery and sweep unless named; api only when named) and prints a table, or one JSON object
 * with --json.
 * Progress goes to stderr. Numbers vary between runs on a shared machine; the ratios, measured
 * side by side in one run, are the figures that count.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { runApiBench } from './api.js';
import { runDeliveryBench, runWorkerScalingBench } from './delivery.js';
import { runFairnessBench } from './fairness.js';
import { runFanOutWorkloads } from './fanOutWorkloads.js';
import { runRedisBytesBench } from './redisBytes.js';
import { runSweepBench } from './sweep.js';
import { runTrialBench } from './trial.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    deliveries: { type: 'string' },
    endpoints: { type: 'string' },
    workers: { type: 'string' },
    concurrency: { type: 'string' },
    'sweep-endpoints': { type: 'string' },
    'api-processes': { type: 'string' },
    seconds: { type: 'string' },
    'in-flight': { type: 'string' },
    'redis-url': { type: 'string' },
    flood: { type: 'string' },
    rate: { type: 'string' },
    owners: { type: 'string' },
    before: { type: 'string' },
    rounds: { type: 'string' },
    compare: { type: 'string' },
    pairs: { type: 'string' },
  },
});
const which = positionals.length > 0 ? positionals : ['delivery', 'sweep'];
const BENCHMARKS = [
  'delivery',
  'sweep',
  'api',
  'redis-bytes',
  'fan-out',
  'workers',
  'trial',
  'fairness',
];
const unknown = which.filter((name) => !BENCHMARKS.includes(name));
if (unknown.length > 0) {
  console.error(
    `bench: unknown benchmark ${unknown.join(', ')} (use delivery, sweep, api, redis-bytes, fan-out, workers, trial or fairness)`,
  );
  process.exit(2);
}
const num = (value: string | undefined) => (value === undefined ? undefined : Number(value));
const log = (line: string) => console.error(line);
const results: Record<string, unknown> = {};

if (which.includes('delivery')) {
  const r = await runDeliveryBench({
    deliveries: num(values.deliveries),
    endpoints: num(values.endpoints),
    workers: num(values.workers),
    concurrency: num(values.concurrency),
    log,
  });
  results.delivery = r;
  if (!values.json) {
    console.log(
      `\nDelivery: ${r.deliveries} deliveries to ${r.endpoints} endpoints, ${r.workers} worker processes x ${r.concurrency}`,
    );
    const row = (mode: 'hookfleet' | 'naive' | 'ceiling') => ({
      'deliveries/s': r.deliveriesPerSecond[mode],
      ...Object.fromEntries(
        Object.entries(r.cpuMsPerDelivery[mode]).map(([k, v]) => [`${k} CPU ms`, v]),
      ),
    });
    console.table({ hookfleet: row('hookfleet'), naive: row('naive'), ceiling: row('ceiling') });
    console.log(
      `hookfleet/naive ${r.ratios.hookfleetToNaive}   hookfleet/ceiling ${r.ratios.hookfleetToCeiling}`,
    );
    const l = r.latencyMs;
    console.log(
      `end-to-end latency at ${l.offeredPerSecond}/s offered, after ${l.warmUpSeconds} s of warm-up: p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms (${l.samples} samples); p99 by second: ${l.p99BySecond.join(' ')} ms`,
    );
    console.log(
      `enqueue (library fan-out to ${r.endpoints} endpoints, after ${r.enqueuePerSecond.warmUpDeliveries} deliveries of warm-up): ${r.enqueuePerSecond.libraryFanOut} deliveries/s`,
    );
    console.log(
      `POST /v1/messages (one endpoint each, ${r.api.concurrency} in flight, workers running): ${r.api.requestsPerSecond} requests/s, ${r.api.errors} errors, ${r.api.apiCpuMsPerRequest} api CPU ms/request`,
    );
    console.log(
      `  other CPU ms/request: ${Object.entries(r.api.otherCpuMsPerRequest)
        .map(([name, ms]) => `${name} ${ms}`)
        .join(', ')} (redis: the whole server, shared)`,
    );
    console.log(
      `worker peak RSS: ${r.workerPeakRssMiB} MiB; in each fifth of the hookfleet run: ${r.workerRssByFifthMiB.join(' ')} MiB`,
    );
  }
}
if (which.includes('sweep')) {
  const r = await runSweepBench({ endpoints: num(values['sweep-endpoints']), log });
  results.sweep = r;
  if (!values.json) console.log('\nSweep:', r);
}
if (which.includes('api')) {
  const r = await runApiBench({
    apiProcesses: num(values['api-processes']),
    workers: num(values.workers),
    endpoints: num(values.endpoints),
    inFlight: num(values['in-flight']),
    seconds: num(values.seconds),
    log,
  });
  results.api = r;
  if (!values.json) {
    console.log(
      `\nAPI: POST /v1/messages, ${r.concurrency} in flight, ${r.apiProcesses} api process(es), ${r.workers} worker process(es) delivering`,
    );
    console.table({
      api: {
        'requests/s': r.requestsPerSecond,
        errors: r.errors,
        'api CPU ms/request': r.apiCpuMsPerRequest,
        'api cores': r.apiCores,
        'machine busy': r.machineBusy,
        'p50 ms': r.latencyMs.p50,
        'p99 ms': r.latencyMs.p99,
      },
    });
    console.log(
      `other CPU ms/request: ${Object.entries(r.otherCpuMsPerRequest)
        .map(([name, ms]) => `${name} ${ms}`)
        .join(', ')} (redis: the whole server, shared)`,
    );
  }
}
if (which.includes('fan-out')) {
  const only = process.env.BENCH_FAN_OUT_WORKLOADS?.split(',') as
    ('broadcast' | 'per-customer')[] | undefined;
  const r = await runFanOutWorkloads({
    ...(only && { workloads: only }),
    deliveries: num(values.deliveries),
    workers: num(values.workers),
    concurrency: num(values.concurrency),
    ...(values.compare !== undefined && { compareRoot: values.compare }),
    ...(values.pairs !== undefined && { pairs: Number(values.pairs) }),
    log,
  });
  results.fanOut = r;
  if (!values.json) {
    console.log(`\nFan-out workloads, ${r.deliveries} deliveries each (deliveries/s):`);
    console.table({ broadcast: r.broadcast, 'per-customer': r.perCustomer });
    console.log('Worker CPU ms per delivery:');
    const workersCpu = (byMode: Partial<Record<string, { workers: number }>>) =>
      Object.fromEntries(Object.entries(byMode).map(([mode, cpu]) => [mode, cpu?.workers]));
    console.table({
      broadcast: workersCpu(r.cpuMsPerDelivery.broadcast),
      'per-customer': workersCpu(r.cpuMsPerDelivery.perCustomer),
    });
    const ratios = (w: Partial<Record<string, number>>, against: string[]) =>
      against
        .filter((mode) => w[mode] !== undefined)
        .map((mode) => `hookfleet/${mode} ${(w.hookfleet! / w[mode]!).toFixed(2)}`)
        .join(', ');
    const modes = ['naive', 'perDeliveryCeiling', 'perMessageCeiling', 'compared'];
    if (r.broadcast.hookfleet) console.log(`broadcast: ${ratios(r.broadcast, modes)}`);
    if (r.perCustomer.hookfleet) console.log(`per-customer: ${ratios(r.perCustomer, modes)}`);
    console.log(
      `enqueue (Producer.send, 50 in flight, into a paused queue): ${JSON.stringify(r.enqueuePerSecond)} deliveries/s; hookfleet worker peak RSS ${JSON.stringify(r.workerPeakRssMiB)} MiB`,
    );
  }
}
if (which.includes('redis-bytes')) {
  const r = await runRedisBytesBench({
    redisUrl: values['redis-url'],
    endpoints: num(values.endpoints),
    log,
  });
  results.redisBytes = r;
  if (!values.json) console.table(r);
}
if (which.includes('workers')) {
  const r = await runWorkerScalingBench({
    deliveries: num(values.deliveries),
    endpoints: num(values.endpoints),
    concurrency: num(values.concurrency),
    log,
  });
  results.workers = r;
  if (!values.json) {
    console.log(
      `\nWorker scaling: ${r.deliveries} deliveries to ${r.endpoints} endpoints per run, ${r.concurrency} in flight per process, on ${availableParallelism()} cores (shared: other load shows)`,
    );
    console.table(
      r.runs.map((run) => ({
        workers: run.workers,
        'deliveries/s': run.deliveriesPerSecond,
        'x one worker': run.speedUp,
        ...Object.fromEntries(
          Object.entries(run.cpuMsPerDelivery).map(([k, v]) => [`${k} CPU ms`, v]),
        ),
        'pg commits/1000': run.postgresCommitsPer1000,
        'pg rows/delivery': run.postgresRowsPerDelivery,
      })),
    );
  }
}
if (which.includes('fairness')) {
  const r = await runFairnessBench({
    flood: num(values.flood),
    rate: num(values.rate),
    owners: num(values.owners),
    seconds: num(values.seconds),
    workers: num(values.workers),
    concurrency: num(values.concurrency),
    before: values.before,
    redisUrl: values['redis-url'],
    log,
  });
  results.fairness = r;
  if (!values.json) {
    console.log(
      `\nFairness: ${r.owners} owners sending ${r.ratePerSecond} messages/s in all; one owner's flood of ${r.flood} messages to one endpoint answering in ${r.slowEndpointAnswerMs} ms`,
    );
    console.table(r.phases);
  }
}
if (which.includes('trial')) {
  const r = await runTrialBench({
    deliveries: num(values.deliveries),
    concurrency: num(values.concurrency),
    rounds: num(values.rounds),
    log,
  });
  results.trial = r;
  if (!values.json) {
    console.log(
      `\nTrial mode (queues on PostgreSQL) beside Redis: one worker x ${r.concurrency}, ${r.deliveries} deliveries per run (deliveries/s, each run):`,
    );
    console.table({
      broadcast: {
        redis: r.deliveriesPerSecond.broadcast.redis.join(' '),
        postgres: r.deliveriesPerSecond.broadcast.postgres.join(' '),
        'postgres/redis': r.ratios.broadcast,
      },
      single: {
        redis: r.deliveriesPerSecond.single.redis.join(' '),
        postgres: r.deliveriesPerSecond.single.postgres.join(' '),
        'postgres/redis': r.ratios.single,
      },
    });
  }
}
if (values.json) console.log(JSON.stringify(results));
