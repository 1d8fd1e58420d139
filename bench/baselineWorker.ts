/**
 * The alternatives hookfleet is measured against, as a worker process:
 * - naive: a plain BullMQ worker that POSTs with undici and runs one Drizzle UPDATE of
 *   last_success_at per delivery (the seed idea's pseudocode);
 * - ceiling: the same worker and POST with no database write at all;
 * - per-message: one job per message carrying its URLs and body, POSTed to all of them in
 *   parallel, no database: the ceiling of a fan-out (bench/fanOutWorkloads.ts).
 * Usage: tsx bench/baselineWorker.ts naive|ceiling|per-message (REDIS_URL, DATABASE_URL, QUEUE_PREFIX, CONCURRENCY).
 */
import { Worker } from 'bullmq';
import { eq, sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { createDbClient } from '../src/db/client.js';
import { endpoints } from '../src/db/schema.js';

const mode = process.argv[2];
const env = process.env;
const db = mode === 'naive' ? createDbClient(env.DATABASE_URL!) : undefined;
const connection = new Redis(env.REDIS_URL!, { maxRetriesPerRequest: null });

async function post(url: string, payload: string): Promise<void> {
  const { statusCode, body } = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload,
  });
  await body.dump();
  if (statusCode >= 300) throw new Error(`HTTP ${statusCode}`);
}

const worker = new Worker<{ url: string; urls?: string[]; endpointId: string; body: string }>(
  'deliveries',
  async (job) => {
    if (mode === 'per-message') {
      await Promise.all(job.data.urls!.map((url) => post(url, job.data.body)));
      return;
    }
    const { statusCode, body } = await request(job.data.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: job.data.body,
    });
    await body.dump();
    if (statusCode >= 300) throw new Error(`HTTP ${statusCode}`);
    if (db)
      await db.db
        .update(endpoints)
        .set({ lastSuccessAt: sql`now()` })
        .where(eq(endpoints.id, job.data.endpointId));
  },
  {
    connection,
    prefix: env.QUEUE_PREFIX!,
    concurrency: Number(env.CONCURRENCY),
  },
);

process.on('SIGTERM', () => {
  void worker.close().then(async () => {
    await db?.close();
    await connection.quit();
    process.exit(0);
  });
});
process.send?.({ type: 'ready' });
