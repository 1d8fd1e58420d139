import { eq } from 'drizzle-orm';
import { pino } from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDbClient } from '../../src/db/client.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { attempts, endpoints } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import {
  IDLE_FLUSH_INTERVAL_MS,
  SuccessRecorder,
  type AttemptRecord,
} from '../../src/worker/successRecorder.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
const logger = createLogger({ logLevel: 'silent' });
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const at = (iso: string) => new Date(iso);
function attempt(
  endpointId: string,
  outcome: AttemptRecord['outcome'],
  attemptedAt: Date,
): AttemptRecord {
  return { messageId: 'msg_t', endpointId, attemptNumber: 1, attemptedAt, outcome, durationMs: 3 };
}
async function row(id: string) {
  const [r] = await db.db.select().from(endpoints).where(eq(endpoints.id, id));
  return r!;
}

describe('SuccessRecorder', () => {
  it('coalesces many outcomes into one row update and one batch of attempt rows', async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const recorder = new SuccessRecorder({ sql: db.sql, logger, flushMs: 60_000 });
    for (let i = 0; i < 100; i++)
      recorder.record(attempt(endpoint.id, 'succeeded', new Date(Date.UTC(2026, 0, 1, 0, 0, i))));
    recorder.record(attempt(endpoint.id, 'retrying', at('2026-01-01T00:05:00Z')));
    recorder.record(attempt(endpoint.id, 'retrying', at('2026-01-01T00:06:00Z')));
    await recorder.close();
    const r = await row(endpoint.id);
    expect(r.lastSuccessAt).toEqual(new Date(Date.UTC(2026, 0, 1, 0, 1, 39)));
    expect(r.lastFailureAt).toEqual(at('2026-01-01T00:06:00Z'));
    expect(r).toMatchObject({ successCount: 100, failureCount: 2, consecutiveFailures: 2 });
    const rows = await db.db.select().from(attempts).where(eq(attempts.endpointId, endpoint.id));
    expect(rows).toHaveLength(102);
  });

  it("never sets last_success_at past the database's clock, however far a worker's clock runs ahead", async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const recorder = new SuccessRecorder({ sql: db.sql, logger, flushMs: 60_000 });
    const anHourAhead = new Date(Date.now() + 3_600_000);
    recorder.record(attempt(endpoint.id, 'succeeded', anHourAhead));
    recorder.record(attempt(endpoint.id, 'retrying', anHourAhead));
    await recorder.close();
    const [clock] = await db.sql<[{ now: string }]>`select now()::text as now`;
    const dbNowMs = new Date(clock.now).getTime();
    const r = await row(endpoint.id);
    expect(r.lastSuccessAt!.getTime()).toBeLessThanOrEqual(dbNowMs);
    expect(r.lastFailureAt!.getTime()).toBeLessThanOrEqual(dbNowMs);
    expect(r.successCount).toBe(1);
  });

  it('never moves last_success_at backwards, whichever worker flushes last', async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const newer = new SuccessRecorder({ sql: db.sql, logger, flushMs: 60_000 });
    const older = new SuccessRecorder({ sql: db.sql, logger, flushMs: 60_000 });
    newer.record(attempt(endpoint.id, 'succeeded', at('2026-03-01T12:00:00Z')));
    older.record(attempt(endpoint.id, 'succeeded', at('2026-03-01T11:00:00Z')));
    older.record(attempt(endpoint.id, 'retrying', at('2026-03-01T11:30:00Z')));
    await newer.close();
    await older.close();
    const r = await row(endpoint.id);
    expect(r.lastSuccessAt).toEqual(at('2026-03-01T12:00:00Z'));
    // The failure came before the newest success, so it does not count as consecutive.
    expect(r.consecutiveFailures).toBe(0);
    expect(r.successCount).toBe(2);
  });

  it('flushes on its own within the flush interval', async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const recorder = new SuccessRecorder({ sql: db.sql, logger, flushMs: 20 });
    recorder.record(attempt(endpoint.id, 'succeeded', at('2026-04-01T00:00:00Z')));
    // Poll the row (bounded): the write is the event we wait for, and it has no other signal.
    for (let i = 0; i < 200 && (await row(endpoint.id)).lastSuccessAt === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((await row(endpoint.id)).lastSuccessAt).toEqual(at('2026-04-01T00:00:00Z'));
    await recorder.close();
  });

  it('writes at once when the worker goes idle, but not more often than every 100 ms', async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const recorder = new SuccessRecorder({ sql: db.sql, logger, flushMs: 60_000 });
    const lastSuccess = async (until: Date) => {
      // Poll the row (bounded): the write is the event we wait for, and it has no other signal.
      for (
        let i = 0;
        i < 200 && (await row(endpoint.id)).lastSuccessAt?.getTime() !== until.getTime();
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return (await row(endpoint.id)).lastSuccessAt;
    };
    const startedMs = Date.now();
    recorder.record(attempt(endpoint.id, 'succeeded', at('2026-05-01T00:00:00Z')));
    recorder.idle();
    expect(await lastSuccess(at('2026-05-01T00:00:00Z'))).toEqual(at('2026-05-01T00:00:00Z'));
    expect(Date.now() - startedMs).toBeLessThan(10_000); // not the minute of flushMs

    recorder.record(attempt(endpoint.id, 'succeeded', at('2026-05-01T00:00:01Z')));
    recorder.idle(); // too soon after the last flush: waits for the interval, not the minute
    expect(await lastSuccess(at('2026-05-01T00:00:01Z'))).toEqual(at('2026-05-01T00:00:01Z'));
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(IDLE_FLUSH_INTERVAL_MS);
    expect(Date.now() - startedMs).toBeLessThan(10_000);
    await recorder.close();
  });

  it('updates endpoint rows in place (HOT) within a day, so recorded successes add no index entries', async () => {
    // One connection, so this test can flush its statistics before reading them.
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 25; i++)
        ids.push((await insertEndpoint(db.db, { url: 'http://127.0.0.1/' })).id);
      const stats = async () => {
        await sql`select pg_stat_force_next_flush()`;
        const [s] = await sql<{ updates: number; hot: number }[]>`
          select n_tup_upd::int as updates, n_tup_hot_upd::int as hot
          from pg_stat_user_tables where relname = 'endpoints'`;
        return s!;
      };
      const before = await stats();
      // 40 flushes of 25 endpoints: 1,000 row updates, all within one UTC day.
      for (let flush = 0; flush < 40; flush++) {
        const recorder = new SuccessRecorder({ sql, logger, flushMs: 60_000 });
        for (const id of ids)
          recorder.record(attempt(id, 'succeeded', new Date(Date.UTC(2026, 5, 1, 12, 0, flush))));
        await recorder.close();
        // An update is HOT only if it changes no indexed column (what this test is about) AND the
        // new version fits in the old one's page. Room comes from pruning dead versions, which an
        // update does on its own only while no transaction in ANY database on the server is older
        // than them (its snapshot's horizon is server-wide): one open elsewhere (another test
        // file's) left 0.31 of these updates HOT. VACUUM's horizon is this database's alone.
        await sql`vacuum endpoints`;
      }
      const after = await stats();
      const updates = after.updates - before.updates;
      expect(updates).toBeGreaterThanOrEqual(1000);
      // Indexing last_success_at itself made this 0 (every update a new index entry).
      expect((after.hot - before.hot) / updates).toBeGreaterThan(0.9);
      expect((await row(ids[0]!)).lastSuccessAt).toEqual(new Date(Date.UTC(2026, 5, 1, 12, 0, 39)));
    } finally {
      await sql.end();
    }
  });

  it('keeps records while PostgreSQL is unreachable and writes them once it is back', async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const proxy = await startTcpProxy(5432);
    const viaProxy = createDbClient(proxy.through(db.url), { max: 2 });
    await viaProxy.sql`select 1`;
    const recorder = new SuccessRecorder({ sql: viaProxy.sql, logger, flushMs: 60_000 });
    try {
      proxy.cut();
      recorder.record(attempt(endpoint.id, 'succeeded', at('2026-05-01T00:00:00Z')));
      await recorder.flush();
      expect(recorder.pendingAttempts).toBe(1);
      expect((await row(endpoint.id)).lastSuccessAt).toBeNull();

      recorder.record(attempt(endpoint.id, 'retrying', at('2026-05-01T00:00:01Z')));
      proxy.restore();
      await recorder.flush();
      expect(recorder.pendingAttempts).toBe(0);
      const r = await row(endpoint.id);
      expect(r.lastSuccessAt).toEqual(at('2026-05-01T00:00:00Z'));
      expect(r).toMatchObject({ successCount: 1, failureCount: 1, consecutiveFailures: 1 });
    } finally {
      await recorder.close();
      // Not viaProxy.close(): postgres.js waits out close()'s whole 5 s for a connection whose
      // connect the cut broke off, and there is nothing left here to let finish.
      await viaProxy.sql.end({ timeout: 0 });
      await proxy.close();
    }
  });

  it('bounds what it keeps during an outage, and says what it dropped and when it was', async () => {
    const endpoint = await insertEndpoint(db.db, { url: 'http://127.0.0.1/' });
    const proxy = await startTcpProxy(5432);
    const viaProxy = createDbClient(proxy.through(db.url), { max: 2 });
    await viaProxy.sql`select 1`;
    const lines: { msg: string; dropped?: number; attemptedFrom?: string; attemptedTo?: string }[] =
      [];
    const capture = pino(
      { level: 'warn' },
      { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
    );
    const metrics = createMetrics({ defaultMetrics: false });
    const recorder = new SuccessRecorder({
      sql: viaProxy.sql,
      logger: capture,
      metrics,
      flushMs: 60_000,
      maxPendingAttempts: 3,
    });
    try {
      proxy.cut();
      for (let second = 0; second < 5; second++)
        recorder.record(attempt(endpoint.id, 'succeeded', at(`2026-05-02T00:00:0${second}Z`)));
      await recorder.flush();
      expect(recorder.pendingAttempts).toBe(3);
      expect(lines.map((line) => line.msg)).toContainEqual(
        expect.stringContaining('attempt history buffer full'),
      );
      expect((await metrics.recorderAttemptsDropped.get()).values[0]?.value).toBe(2);

      proxy.restore();
      await recorder.flush();
      expect(lines.find((line) => line.dropped !== undefined)).toMatchObject({
        dropped: 2,
        attemptedFrom: '2026-05-02T00:00:00.000Z',
        attemptedTo: '2026-05-02T00:00:01.000Z',
      });
      // The tally was never dropped: every success counts, the newest time stands.
      const r = await row(endpoint.id);
      expect(r).toMatchObject({ successCount: 5, lastSuccessAt: at('2026-05-02T00:00:04Z') });
      const kept = await db.db.select().from(attempts).where(eq(attempts.endpointId, endpoint.id));
      expect(kept).toHaveLength(3);
    } finally {
      await recorder.close();
      // Not viaProxy.close(): postgres.js waits out close()'s whole 5 s for a connection whose
      // connect the cut broke off, and there is nothing left here to let finish.
      await viaProxy.sql.end({ timeout: 0 });
      await proxy.close();
    }
  });
});
