/** `/healthz` and `/metrics`: open (no credentials), for load balancers and Prometheus. */
import type { Queue } from 'bullmq';
import { Hono } from 'hono';
import { pingDatabase, type DbClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { withDeadline } from '../deadline.js';

/** Longest a health probe or a queue-depth read may take before it counts as down. */
const PROBE_TIMEOUT_MS = 2000;

/** The job states the queue-depth gauge reports. */
export const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'completed',
  'failed',
] as const;

/** What /healthz and /metrics ask of where the queues live (a QueueBackend is one). */
export interface QueueStore {
  kind: 'redis' | 'postgres';
  ready(): boolean;
  ping(): Promise<void>;
}

export interface OpsRoutesDeps {
  logger: Logger;
  dbClient: DbClient;
  queueStore: QueueStore;
  metrics: Metrics;
  queues: readonly Queue[];
}

export function opsRoutes(deps: OpsRoutesDeps): Hono {
  const app = new Hono();

  app.get('/healthz', async (c) => {
    const store = deps.queueStore;
    const headers = { 'cache-control': 'no-store' };
    if (store.kind === 'postgres') {
      // Trial mode: the queues are in PostgreSQL too, so its answer is theirs.
      const postgres = await probe(() => pingDatabase(deps.dbClient.sql));
      const status = postgres === 'up' ? 'ok' : 'unavailable';
      return c.json({ status, queues: 'postgres', postgres }, status === 'ok' ? 200 : 503, headers);
    }
    const [redis, postgres] = await Promise.all([
      store.ready() ? probe(() => store.ping()) : Promise.resolve('down' as const),
      probe(() => pingDatabase(deps.dbClient.sql)),
    ]);
    const status = redis === 'up' && postgres === 'up' ? 'ok' : 'unavailable';
    return c.json({ status, redis, postgres }, status === 'ok' ? 200 : 503, headers);
  });

  app.get('/metrics', async (c) => {
    await refreshQueueDepth(deps).catch((error: unknown) => {
      deps.logger.warn({ err: error }, 'queue depth not read; /metrics shows the previous values');
    });
    return c.body(await deps.metrics.registry.metrics(), 200, {
      'content-type': deps.metrics.registry.contentType,
    });
  });

  return app;
}

/** Reads each queue's job counts (one round trip per queue) into the queue-depth gauge. */
async function refreshQueueDepth(deps: OpsRoutesDeps): Promise<void> {
  if (!deps.queueStore.ready()) throw new Error('Redis is not connected');
  const counts = await withTimeout(
    Promise.all(deps.queues.map((queue) => queue.getJobCounts(...QUEUE_STATES))),
  );
  // A sharded queue's shards share its name: the gauge shows the queue's total.
  const totals = new Map<string, Record<string, number>>();
  deps.queues.forEach((queue, index) => {
    const total = totals.get(queue.name) ?? {};
    totals.set(queue.name, total);
    for (const state of QUEUE_STATES) {
      total[state] = (total[state] ?? 0) + (counts[index]?.[state] ?? 0);
    }
  });
  for (const [queue, total] of totals) {
    for (const state of QUEUE_STATES) deps.metrics.queueDepth.set({ queue, state }, total[state]!);
  }
}

async function probe(check: () => Promise<unknown>): Promise<'up' | 'down'> {
  try {
    await withTimeout(check());
    return 'up';
  } catch {
    return 'down';
  }
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  return withDeadline(promise, PROBE_TIMEOUT_MS, `no answer within ${PROBE_TIMEOUT_MS} ms`);
}
