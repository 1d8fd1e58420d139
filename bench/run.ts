/**
 * `npm run bench [-- delivery|sweep] [--json] [--deliveries N] [--endpoints N] [--workers N]
 * [--concurrency N]`: runs the benchmarks and prints a table, or one JSON object with --json.
 * Progress goes to stderr. Numbers vary between runs on a shared machine; the ratios, measured
 * side by side in one run, are the figures that count.
 */
import { parseArgs } from 'node:util';
import { runDeliveryBench } from './delivery.js';
import { runSweepBench } from './sweep.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'boolean', default: false },
    deliveries: { type: 'string' },
    endpoints: { type: 'string' },
    workers: { type: 'string' },
    concurrency: { type: 'string' },
    'sweep-endpoints': { type: 'string' },
  },
});
const which = positionals.length > 0 ? positionals : ['delivery', 'sweep'];
const unknown = which.filter((name) => name !== 'delivery' && name !== 'sweep');
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark ${unknown.join(', ')} (use delivery or sweep)`);
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
    console.table({
      hookfleet: { 'deliveries/s': r.deliveriesPerSecond.hookfleet },
      naive: { 'deliveries/s': r.deliveriesPerSecond.naive },
      ceiling: { 'deliveries/s': r.deliveriesPerSecond.ceiling },
    });
    console.log(
      `hookfleet/naive ${r.ratios.hookfleetToNaive}   hookfleet/ceiling ${r.ratios.hookfleetToCeiling}`,
    );
    const l = r.latencyMs;
    console.log(
      `end-to-end latency at ${l.offeredPerSecond}/s offered: p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms (${l.samples} samples)`,
    );
    console.log(
      `enqueue (library fan-out to ${r.endpoints} endpoints): ${r.enqueuePerSecond.libraryFanOut} deliveries/s`,
    );
    console.log(
      `POST /v1/messages (one endpoint each, ${r.api.concurrency} in flight, workers running): ${r.api.requestsPerSecond} requests/s, ${r.api.errors} errors`,
    );
    console.log(`worker peak RSS: ${r.workerPeakRssMiB} MiB`);
  }
}
if (which.includes('sweep')) {
  const r = await runSweepBench({ endpoints: num(values['sweep-endpoints']), log });
  results.sweep = r;
  if (!values.json) console.log('\nSweep:', r);
}
if (values.json) console.log(JSON.stringify(results));
