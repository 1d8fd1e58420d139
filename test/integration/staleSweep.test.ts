import { Queue } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { findEndpoint, insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { explainStaleBatch } from '../../src/db/staleEndpoints.js';
import { OPERATOR_OWNER_ID } from '../../src/db/operatorMessages.js';
import { createOperatorEvents } from '../../src/delivery/operatorEvents.js';
import { MESSAGES_QUEUE } from '../../src/jobs.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { sweepStaleEndpoints, type SweepOptions } from '../../src/worker/staleSweep.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { deleteQueueKeys, TEST_REDIS_URL, testQueuePrefix } from '../helpers/testRedis.js';

let db: TestDatabase;
/** The `messages` queue operational events are enqueued on (no worker takes them here). */
let messagesQueue: Queue;
const prefix = testQueuePrefix();
/** An operator URL no request reaches: these tests read the events stored, not delivered. */
const OPERATOR_URL = 'http://127.0.0.1:9/operator';

beforeAll(async () => {
  db = await createTestDatabase();
  messagesQueue = new Queue(MESSAGES_QUEUE, { connection: { url: TEST_REDIS_URL }, prefix });
});
afterAll(async () => {
  await messagesQueue.close();
  await deleteQueueKeys(prefix);
  await db.drop();
});
beforeEach(async () => {
  await db.sql`truncate endpoints, attempts, messages`;
});

const logger = createLogger({ logLevel: 'silent' });

function configWith(env: Record<string, string> = {}) {
  return loadConfig({
    DATABASE_URL: db.url,
    HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
    HOOKFLEET_DELIVERY_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'silent',
    ...env,
  });
}

function sweep(options: SweepOptions = {}, env: Record<string, string> = {}) {
  const config = configWith(env);
  const events = createOperatorEvents({ sql: db.sql, queue: messagesQueue, config, logger });
  return sweepStaleEndpoints({ config, logger, dbClient: db, events }, options);
}

interface Clock {
  lastSuccessDaysAgo?: number;
  createdDaysAgo?: number;
  reactivatedDaysAgo?: number;
  staleAfterDays?: number;
}

/** An endpoint whose timestamps are set directly in the database, `n` days (24 h) before now(). */
async function endpointWith(clock: Clock): Promise<string> {
  const { id } = await insertEndpoint(db.db, {
    url: 'https://receiver.example/hook',
    staleAfterDays: clock.staleAfterDays ?? null,
  });
  const ago = (days: number | undefined) => (days === undefined ? null : days);
  await db.sql`
    update endpoints set
      created_at = now() - coalesce(${ago(clock.createdDaysAgo)}::int, 0) * interval '24 hours',
      last_success_at = now() - ${ago(clock.lastSuccessDaysAgo)}::int * interval '24 hours',
      reactivated_at = now() - ${ago(clock.reactivatedDaysAgo)}::int * interval '24 hours'
    where id = ${id}`;
  return id;
}

async function isActive(id: string): Promise<boolean> {
  return (await findEndpoint(db.db, id))!.active;
}

/** An event as stored: its type, and its `data` (the workers wrap it in the envelope). */
interface EventBody {
  type: string;
  data: {
    endpointId: string;
    ownerId: string | null;
    reason?: string;
    lastSuccessAt: string | null;
    disablesAt?: string;
  };
}

/** The operational events stored for the operator's endpoint, oldest first. */
async function storedEvents(type: string): Promise<EventBody[]> {
  const rows = await db.sql<{ event_type: string; body: string }[]>`
    select event_type, body from messages where owner_id = ${OPERATOR_OWNER_ID} order by id`;
  return rows
    .map((row) => ({ type: row.event_type, data: JSON.parse(row.body) as EventBody['data'] }))
    .filter((e) => e.type === type);
}

function idsIn(events: readonly EventBody[]): string[] {
  return events.map((event) => event.data.endpointId);
}

describe('sweepStaleEndpoints', () => {
  it('deactivates an endpoint whose last success is 366 days old and keeps one at 364 days', async () => {
    const stale = await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 366 });
    const fresh = await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 364 });

    const result = await sweep();

    expect(result.deactivated).toBe(1);
    expect(await isActive(fresh)).toBe(true);
    const row = (await findEndpoint(db.db, stale))!;
    expect(row).toMatchObject({ active: false, deactivationReason: 'stale' });
    expect(row.deactivatedAt).not.toBeNull();
  });

  it('judges an endpoint that never succeeded by its created_at', async () => {
    const old = await endpointWith({ createdDaysAgo: 366 });
    const young = await endpointWith({ createdDaysAgo: 364 });

    await sweep();

    expect(await isActive(old)).toBe(false);
    expect(await isActive(young)).toBe(true);
  });

  it("uses an endpoint's own stale_after_days, shorter or longer than the default", async () => {
    const shortStale = await endpointWith({
      createdDaysAgo: 100,
      lastSuccessDaysAgo: 31,
      staleAfterDays: 30,
    });
    const shortFresh = await endpointWith({
      createdDaysAgo: 100,
      lastSuccessDaysAgo: 29,
      staleAfterDays: 30,
    });
    const longStale = await endpointWith({
      createdDaysAgo: 900,
      lastSuccessDaysAgo: 501,
      staleAfterDays: 500,
    });
    const longFresh = await endpointWith({
      createdDaysAgo: 900,
      lastSuccessDaysAgo: 400,
      staleAfterDays: 500,
    });

    const result = await sweep();

    expect(result.deactivated).toBe(2);
    expect(await isActive(shortStale)).toBe(false);
    expect(await isActive(shortFresh)).toBe(true);
    expect(await isActive(longStale)).toBe(false);
    expect(await isActive(longFresh)).toBe(true);
  });

  it('pages past endpoints with a longer threshold without skipping stale ones', async () => {
    const stale: string[] = [];
    const kept: string[] = [];
    for (let day = 370; day < 390; day++) {
      // Every third endpoint has a 1000-day threshold: read by the scan, but not stale.
      if (day % 3 === 0)
        kept.push(
          await endpointWith({
            createdDaysAgo: 999,
            lastSuccessDaysAgo: day,
            staleAfterDays: 1000,
          }),
        );
      else stale.push(await endpointWith({ createdDaysAgo: 999, lastSuccessDaysAgo: day }));
    }

    const result = await sweep({ batchSize: 2 });

    expect(result.deactivated).toBe(stale.length);
    for (const id of stale) expect(await isActive(id)).toBe(false);
    for (const id of kept) expect(await isActive(id)).toBe(true);
  });

  it('lets a reactivated endpoint (reactivated_at = now) survive the next sweep', async () => {
    const id = await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 400 });
    await sweep();
    expect(await isActive(id)).toBe(false);

    await setEndpointActive(db.db, id, true);
    const result = await sweep();

    expect(result.deactivated).toBe(0);
    expect(result.warned).toBe(0);
    expect(await isActive(id)).toBe(true);
  });

  it('counts deactivations in hookfleet_endpoints_deactivated_total{reason="stale"}', async () => {
    await endpointWith({ createdDaysAgo: 400 });
    await endpointWith({ createdDaysAgo: 500 });
    const metrics = createMetrics({ defaultMetrics: false });

    await sweepStaleEndpoints({ config: configWith(), logger, dbClient: db, metrics }, {});

    const { values } = await metrics.endpointsDeactivated.get();
    expect(values).toEqual([expect.objectContaining({ labels: { reason: 'stale' }, value: 2 })]);
  });

  it('deletes attempt history older than the retention, in batches', async () => {
    const now = Date.now();
    const days = [31, 32, 45, 60, 29, 1];
    for (const [i, ago] of days.entries()) {
      await db.sql`
        insert into attempts (message_id, endpoint_id, attempt_number, attempted_at, outcome, duration_ms)
        values (${`msg_${i}`}, 'ep_x', 1, ${new Date(now - ago * 86_400_000).toISOString()}::timestamptz, 'succeeded', 5)`;
    }

    const result = await sweep({ batchSize: 2 }, { HOOKFLEET_ATTEMPT_RETENTION_DAYS: '30' });

    expect(result.attemptsPruned).toBe(4);
    const left = await db.sql<
      { message_id: string }[]
    >`select message_id from attempts order by message_id`;
    expect(left.map((row) => row.message_id)).toEqual(['msg_4', 'msg_5']);
  });

  it('deletes messages older than the message retention, in batches, and keeps newer ones', async () => {
    const now = Date.now();
    const days = [31, 32, 45, 60, 400, 29, 1];
    for (const [i, ago] of days.entries()) {
      await db.sql`
        insert into messages (id, event_type, payload, endpoint_ids, created_at)
        values (${`msg_keep_or_prune_${i}`}, 'x.y', '{}'::jsonb, '{}'::text[],
                ${new Date(now - ago * 86_400_000).toISOString()}::timestamptz)`;
    }

    const result = await sweep({ batchSize: 2 }, { HOOKFLEET_MESSAGE_RETENTION_DAYS: '30' });

    expect(result.messagesPruned).toBe(5);
    const left = await db.sql<{ id: string }[]>`
      select id from messages where id like 'msg_keep_or_prune_%' order by id`;
    expect(left.map((row) => row.id)).toEqual(['msg_keep_or_prune_5', 'msg_keep_or_prune_6']);
  });

  it('changes nothing in a dry run, and reports counts and a sample', async () => {
    const stale = await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 400 });
    const neverSucceeded = await endpointWith({ createdDaysAgo: 370 });
    const nearly = await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 350 });
    await db.sql`
      insert into attempts (message_id, endpoint_id, attempt_number, attempted_at, outcome, duration_ms)
      values ('msg_old', ${stale}, 1, now() - interval '90 days', 'failed', 5)`;

    const result = await sweep({ dryRun: true }, { HOOKFLEET_OPERATOR_WEBHOOK_URL: OPERATOR_URL });

    expect(result).toMatchObject({ dryRun: true, deactivated: 2, warned: 1, attemptsPruned: 1 });
    expect(result.sample.map((row) => row.id)).toEqual([stale, neverSucceeded]);
    expect(result.sample[0]).toMatchObject({
      url: 'https://receiver.example/hook',
      staleAfterDays: 365,
    });
    expect(result.sample[0]!.lastSuccessAt).toBeInstanceOf(Date);
    expect(result.sample[1]!.lastSuccessAt).toBeNull();
    for (const id of [stale, neverSucceeded, nearly]) {
      const row = (await findEndpoint(db.db, id))!;
      expect(row).toMatchObject({ active: true, staleWarnedAt: null, deactivatedAt: null });
    }
    const [left] = await db.sql<{ n: number }[]>`select count(*)::int as n from attempts`;
    expect(left?.n).toBe(1);
    expect(await storedEvents('endpoint.disabled')).toHaveLength(0);
  });
});

describe('stale sweep query plan', () => {
  // The default scan's bound is written in staleClock.ts (indexedStaleClock) and the index it
  // needs in schema.ts. If the two expressions drift apart the sweep still gives right answers but
  // reads every active endpoint per batch, which only the million-row sweep benchmark would show.
  // With sequential scans priced out, the planner uses the index; the bound must be its condition.
  it('bounds the default scan by the expression of endpoints_stale_clock_active_idx', async () => {
    const rule = { now: new Date(), defaultDays: 365, warningDays: 14 };
    const connection = await db.sql.reserve();
    let plan: string[];
    try {
      await connection`set enable_seqscan = off`;
      await connection`set enable_bitmapscan = off`;
      plan = await explainStaleBatch(connection, rule, 500);
    } finally {
      await connection`reset all`;
      connection.release();
    }
    const scan = plan.findIndex((line) => line.includes('Index Scan using'));
    expect(plan[scan]).toContain('endpoints_stale_clock_active_idx');
    expect(plan[scan + 1]).toMatch(
      /Index Cond: \(COALESCE\(last_success_day, reactivated_at, created_at\) </,
    );
  });
});

describe('operator events', () => {
  it('two concurrent sweeps deactivate each endpoint once and store exactly one endpoint.disabled event for it, with a fan-out job', async () => {
    const env = { HOOKFLEET_OPERATOR_WEBHOOK_URL: OPERATOR_URL };
    const stale: string[] = [];
    for (let i = 0; i < 12; i++)
      stale.push(await endpointWith({ createdDaysAgo: 900, lastSuccessDaysAgo: 400 + i }));
    for (let i = 0; i < 3; i++)
      stale.push(await endpointWith({ createdDaysAgo: 90, staleAfterDays: 30 + i }));

    const [a, b] = await Promise.all([sweep({ batchSize: 2 }, env), sweep({ batchSize: 3 }, env)]);

    expect(a.deactivated + b.deactivated).toBe(stale.length);
    expect(a.eventsFailed + b.eventsFailed).toBe(0);
    const events = await storedEvents('endpoint.disabled');
    expect(idsIn(events)).toHaveLength(stale.length);
    expect(new Set(idsIn(events))).toEqual(new Set(stale));
    expect(events.every((event) => event.data.reason === 'stale')).toBe(true);
    const [message] = await db.sql<{ id: string }[]>`
      select id from messages where owner_id = ${OPERATOR_OWNER_ID} limit 1`;
    expect(await messagesQueue.getJob(message!.id)).toBeDefined();
  });

  it('stores nothing without HOOKFLEET_OPERATOR_WEBHOOK_URL', async () => {
    await endpointWith({ createdDaysAgo: 400 });

    const result = await sweep();

    expect(result.deactivated).toBe(1);
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages`;
    expect(row!.n).toBe(0);
  });

  it('warns once across two sweeps, and again only after a newer success', async () => {
    // Kept past the third sweep, a year on, which would otherwise prune the stored events.
    const env = {
      HOOKFLEET_OPERATOR_WEBHOOK_URL: OPERATOR_URL,
      HOOKFLEET_MESSAGE_RETENTION_DAYS: '1000',
    };
    const nearly = await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 340 });
    const customNearly = await endpointWith({
      createdDaysAgo: 80,
      lastSuccessDaysAgo: 40,
      staleAfterDays: 60,
    });
    await endpointWith({ createdDaysAgo: 800, lastSuccessDaysAgo: 330 });
    await endpointWith({ createdDaysAgo: 80, lastSuccessDaysAgo: 20, staleAfterDays: 60 });

    const first = await sweep({}, env);
    const second = await sweep({}, env);

    expect(first.warned).toBe(2);
    expect(second.warned).toBe(0);
    const warnings = await storedEvents('endpoint.stale_warning');
    expect(new Set(idsIn(warnings))).toEqual(new Set([nearly, customNearly]));
    expect(idsIn(warnings)).toHaveLength(2);
    const warning = warnings.find((e) => e.data.endpointId === nearly)!;
    const inDays = (Date.parse(warning.data.disablesAt!) - Date.now()) / 86_400_000;
    expect(inDays).toBeGreaterThan(24.9);
    expect(inDays).toBeLessThan(25.1);
    expect(await isActive(nearly)).toBe(true);

    // A success after the warning re-arms it: 340 days after that success, it is warned again.
    await db.sql`update endpoints set last_success_at = now() where id = ${nearly}`;
    const later = new Date(Date.now() + 340 * 86_400_000);
    const third = await sweep({ now: later }, env);
    expect(idsIn((await storedEvents('endpoint.stale_warning')).slice(2))).toContain(nearly);
    expect(third.warned).toBeGreaterThanOrEqual(1);
  });
});
