/**
 * One row PostgreSQL refuses must never stop the success recorder. A NUL in one attempt's error
 * text used to make PostgreSQL refuse the whole batch (SQLSTATE 22021), and the recorder retried
 * that batch forever: no endpoint the worker served got its last_success_at, counters or attempt
 * rows again. Records here are fed straight into the recorder, past the delivery client's own
 * sanitising, as a bug or a future caller could.
 */
import { eq } from 'drizzle-orm';
import { pino } from 'pino';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { attempts, endpoints } from '../../src/db/schema.js';
import { createMetrics } from '../../src/metrics.js';
import { SuccessRecorder, type AttemptRecord } from '../../src/worker/successRecorder.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

/** A recorder that only writes when told, with its log lines and metrics at hand. */
function recorder(sql: postgres.Sql = db.sql) {
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const metrics = createMetrics({ defaultMetrics: false });
  const recorder = new SuccessRecorder({ sql, logger, metrics, flushMs: 60_000 });
  const refused = async (action: 'repaired' | 'dropped') =>
    (await metrics.recorderRowsRefused.get()).values.find((v) => v.labels.action === action)
      ?.value ?? 0;
  return { recorder, logs, refused };
}

let seconds = 0;
/** An attempt at a new second of 2026-07-01, so the newest one is known. */
function attempt(endpointId: string, fields: Partial<AttemptRecord> = {}): AttemptRecord {
  seconds += 1;
  return {
    messageId: `msg_${seconds}`,
    endpointId,
    attemptNumber: 1,
    attemptedAt: new Date(Date.UTC(2026, 6, 1, 0, 0, seconds)),
    outcome: 'succeeded',
    statusCode: 204,
    durationMs: 4,
    ...fields,
  };
}

/**
 * The real client, except that its `n`th write of outcomes (1 = the first) commits and then loses
 * its answer, as a connection dropped after COMMIT does.
 */
function answerLostAt(n: number): postgres.Sql {
  let writes = 0;
  const real = db.sql;
  const sql = ((strings: TemplateStringsArray, ...args: never[]) => {
    if (!strings.join('?').includes('insert into attempts')) return real(strings, ...args);
    writes += 1;
    if (writes !== n) return real(strings, ...args);
    return real(strings, ...args).then(() => {
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    });
  }) as unknown as postgres.Sql;
  return sql;
}

async function endpointRow(id: string) {
  const [row] = await db.db.select().from(endpoints).where(eq(endpoints.id, id));
  return row!;
}
const attemptRows = (endpointId: string) =>
  db.db.select().from(attempts).where(eq(attempts.endpointId, endpointId));
const newEndpoint = () => insertEndpoint(db.db, { url: 'http://127.0.0.1:9/' });

describe('the success recorder with rows PostgreSQL refuses', () => {
  it('writes an error text holding a NUL sanitised, and every healthy row beside it', async () => {
    const healthy = await newEndpoint();
    const hostile = await newEndpoint();
    const { recorder: r } = recorder();
    const successes = Array.from({ length: 20 }, () => attempt(healthy.id));
    successes.forEach((a) => r.record(a));
    r.record(
      attempt(hostile.id, { outcome: 'retrying', statusCode: 500, error: 'HTTP 500: a\0\0b\x01' }),
    );
    await r.flush();

    expect(r.pendingAttempts).toBe(0);
    const row = await endpointRow(healthy.id);
    expect(row.lastSuccessAt).toEqual(successes[19]!.attemptedAt);
    expect(row).toMatchObject({ successCount: 20, failureCount: 0 });
    expect(await attemptRows(healthy.id)).toHaveLength(20);
    expect(await endpointRow(hostile.id)).toMatchObject({
      failureCount: 1,
      consecutiveFailures: 1,
    });
    const [bad] = await attemptRows(hostile.id);
    expect(bad).toMatchObject({ statusCode: 500, error: 'HTTP 500: a\uFFFDb\uFFFD' });
    await r.close();
  });

  it('isolates rows with numbers out of their column range in O(log n) statements, and writes them repaired', async () => {
    const ids = await Promise.all(Array.from({ length: 10 }, newEndpoint)).then((rows) =>
      rows.map((e) => e.id),
    );
    const { recorder: r, logs, refused } = recorder();
    for (const id of ids) for (let i = 0; i < 100; i++) r.record(attempt(id));
    // smallint status_code (22003), smallint attempt_number (22003), int duration_ms from NaN (22P02).
    r.record(attempt(ids[3]!, { outcome: 'retrying', statusCode: 70_000, error: 'HTTP 70000' }));
    r.record(attempt(ids[7]!, { outcome: 'retrying', attemptNumber: 40_000, statusCode: 500 }));
    r.record(attempt(ids[7]!, { outcome: 'retrying', durationMs: Number.NaN, statusCode: 503 }));
    await r.flush();

    expect(r.pendingAttempts).toBe(0);
    for (const id of ids) {
      const failures = id === ids[3] ? 1 : id === ids[7] ? 2 : 0;
      expect(await endpointRow(id)).toMatchObject({ successCount: 100, failureCount: failures });
      expect(await attemptRows(id)).toHaveLength(100 + failures);
    }
    const [status] = (await attemptRows(ids[3]!)).filter((a) => a.outcome === 'retrying');
    expect(status).toMatchObject({ statusCode: null });
    expect(status!.error).toMatch(/SQLSTATE 22003.*status code 70000 not recordable: HTTP 70000$/);
    const repaired = (await attemptRows(ids[7]!)).filter((a) => a.outcome === 'retrying');
    expect(repaired.map((a) => [a.attemptNumber, a.durationMs]).sort()).toEqual([
      [1, 0],
      [32_767, 4],
    ]);
    expect(await refused('repaired')).toBe(3);
    const summary = logs.find((l) => typeof l.statements === 'number');
    // 1,013 items (10 tallies, 1,003 attempt rows): 2 statements per halving for each bad row
    // beyond the shared ones, plus the first and the repairs; far below one per row.
    expect(summary).toMatchObject({ refused: 3 });
    expect(summary!.statements).toBeLessThanOrEqual(3 * 2 * Math.ceil(Math.log2(1013)) + 4);
    await r.close();
  });

  it('drops a row that is refused even repaired, counts it, keeps its tally, and does not try it again', async () => {
    const endpoint = await newEndpoint();
    const { recorder: r, logs, refused } = recorder();
    // Ids are kept as they are (changing one would misfile the row), so a NUL in one stays refused.
    r.record(attempt(endpoint.id, { messageId: 'msg_\0bad' }));
    r.record(attempt(endpoint.id));
    await r.flush();

    expect(r.pendingAttempts).toBe(0);
    expect(await refused('dropped')).toBe(1);
    expect(
      logs.some((l) => l.msg === 'PostgreSQL refused an outcome row even repaired; dropped'),
    ).toBe(true);
    expect(await endpointRow(endpoint.id)).toMatchObject({ successCount: 2 });
    expect(await attemptRows(endpoint.id)).toHaveLength(1);

    r.record(attempt(endpoint.id));
    await r.flush();
    expect(await refused('dropped')).toBe(1);
    expect(await attemptRows(endpoint.id)).toHaveLength(2);
    await r.close();
  });

  it('keeps the whole batch, splitting nothing, when the refusal is not a row’s doing', async () => {
    const endpoint = await newEndpoint();
    const { recorder: r, refused } = recorder();
    // A table missing (42P01), as before a migration: every row is fine once it is back.
    await db.sql`alter table attempts rename to attempts_away`;
    try {
      r.record(attempt(endpoint.id));
      r.record(attempt(endpoint.id, { outcome: 'retrying', statusCode: 500 }));
      await r.flush();
      expect(r.pendingAttempts).toBe(2);
    } finally {
      await db.sql`alter table attempts_away rename to attempts`;
    }
    await r.flush();
    expect(r.pendingAttempts).toBe(0);
    expect(await refused('repaired')).toBe(0);
    expect(await endpointRow(endpoint.id)).toMatchObject({ successCount: 1, failureCount: 1 });
    expect(await attemptRows(endpoint.id)).toHaveLength(2);
    await r.close();
  });

  it('writes each row exactly once when a connection drops after a commit in the middle of isolating', async () => {
    const [a, b] = [await newEndpoint(), await newEndpoint()].sort((x, y) =>
      x.id.localeCompare(y.id),
    );
    // The whole batch is refused (write 1); its first half commits but the answer is lost (write 2).
    const { recorder: r } = recorder(answerLostAt(2));
    for (let i = 0; i < 20; i++) r.record(attempt(a!.id));
    for (let i = 0; i < 20; i++) r.record(attempt(b!.id));
    r.record(attempt(b!.id, { outcome: 'failed', statusCode: 99_999 }));
    await r.flush();
    expect(r.pendingAttempts).toBe(41); // the half in doubt and the half not tried yet

    await r.flush(); // the half in doubt is found written; the other half is isolated and written
    expect(r.pendingAttempts).toBe(0);
    expect(await endpointRow(a!.id)).toMatchObject({ successCount: 20, failureCount: 0 });
    expect(await endpointRow(b!.id)).toMatchObject({ successCount: 20, failureCount: 1 });
    expect(await attemptRows(a!.id)).toHaveLength(20);
    expect(await attemptRows(b!.id)).toHaveLength(21);
    await r.close();
  });
});
