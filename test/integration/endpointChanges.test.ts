import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { createLogger } from '../../src/logger.js';
import { createEndpointCache, CONFIRMED_ROW_MAX_AGE_MS } from '../../src/worker/endpointCache.js';
import {
  createEndpointChanges,
  ENDPOINT_CHANGES_CHANNEL,
  type EndpointChanges,
  type EndpointChangesOptions,
} from '../../src/worker/endpointChanges.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
const feeds: EndpointChanges[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(feeds.map((feed) => feed.close()));
  await db.drop();
});
beforeEach(async () => {
  await db.sql`truncate endpoints`;
});

const logger = createLogger({ logLevel: 'silent' });

/** A feed on the test database; pings only when the test asks (pingMs is long). */
function feed(options: Partial<EndpointChangesOptions> = {}): EndpointChanges {
  const changes = createEndpointChanges({
    databaseUrl: db.url,
    sql: db.sql,
    logger,
    pingMs: 600_000,
    ...options,
  });
  feeds.push(changes);
  return changes;
}

/** Resolves with the id of the next endpoint change the feed announces. */
function nextChange(changes: EndpointChanges): Promise<string> {
  return new Promise((resolve) => changes.onChange(resolve));
}

const setDescription = (id: string, description: string) =>
  db.sql`update endpoints set description = ${description} where id = ${id}`;

/** The endpoint ids announced while `change` ran, in commit order. */
async function announcedDuring(change: () => Promise<void>): Promise<string[]> {
  const heard: string[] = [];
  let sentinel!: () => void;
  const sentinelHeard = new Promise<void>((resolve) => (sentinel = resolve));
  const listening = await db.sql.listen(ENDPOINT_CHANGES_CHANNEL, (payload) => {
    if (payload === 'sentinel') sentinel();
    else heard.push(payload);
  });
  try {
    await change();
    // Notifications arrive in commit order: once this one is heard, the others have been.
    await db.sql`select pg_notify(${ENDPOINT_CHANGES_CHANNEL}, 'sentinel')`;
    await sentinelHeard;
    return heard;
  } finally {
    await listening.unlisten();
  }
}

describe('endpoint change notifications (drizzle/0003)', () => {
  it('announce changes to what a delivery reads and deletions, never the success recorder', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/a' });
    const b = await insertEndpoint(db.db, { url: 'http://127.0.0.1/b' });
    const heard = await announcedDuring(async () => {
      // What the recorder writes (worker/successRecorder.ts), and a column deliveries never read.
      await db.sql`update endpoints set last_success_at = now(), success_count = success_count + 1,
        consecutive_failures = 0, last_failure_at = now(), failure_count = 1 where id = ${a.id}`;
      await setDescription(a.id, 'not read by deliveries');
      await db.sql`update endpoints set active = false, deactivation_reason = 'manual' where id = ${a.id}`;
      await db.sql`update endpoints set secret = 'whsec_new', previous_secret = ${a.secret} where id = ${b.id}`;
      await db.sql`delete from endpoints where id = ${b.id}`;
    });
    expect(heard).toEqual([a.id, b.id, b.id]);
  });
});

describe('endpoint change notifications (drizzle/0006)', () => {
  it('announce changes to the payload format, the custom headers and the retry schedule', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/a' });
    const heard = await announcedDuring(async () => {
      await db.sql`update endpoints set payload_format = 'raw' where id = ${a.id}`;
      await db.sql`update endpoints set headers = '{"X-A":"b"}' where id = ${a.id}`;
      await db.sql`update endpoints set retry_schedule_ms = '{1000}' where id = ${a.id}`;
    });
    expect(heard).toEqual([a.id, a.id, a.id]);
  });
});

describe('createEndpointCache with change notifications', () => {
  it('drops a row the moment its change is announced, long before the bound', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/before' });
    const changes = feed();
    await changes.listening();
    const cache = createEndpointCache(db.db, { ttlMs: 600_000, changes });
    expect((await cache.get(a.id))?.url).toBe('http://127.0.0.1/before');

    const announced = nextChange(changes);
    await db.sql`update endpoints set url = 'http://127.0.0.1/after' where id = ${a.id}`;
    expect(await announced).toBe(a.id);
    expect((await cache.get(a.id))?.url).toBe('http://127.0.0.1/after');
  });

  it('keeps a row past the bound while pings come back, and reads it again when they stop', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/a', description: 'one' });
    let nowMs = 0;
    const now = () => nowMs;
    const changes = feed({ now });
    await changes.listening();
    const cache = createEndpointCache(db.db, { ttlMs: 1000, changes, now });
    nowMs = 1;
    expect((await cache.get(a.id))?.description).toBe('one');
    // Not announced (deliveries do not read it): it shows only when the row is read again.
    await setDescription(a.id, 'two');

    nowMs = 5000;
    expect(await changes.ping()).toBe(true);
    expect((await cache.get(a.id))?.description).toBe('one'); // vouched for as of the ping

    nowMs = 6001; // the last answered ping is older than the bound
    expect((await cache.get(a.id))?.description).toBe('two');

    // However many pings come back, a row is read again after CONFIRMED_ROW_MAX_AGE_MS.
    await setDescription(a.id, 'three');
    nowMs = 6001 + CONFIRMED_ROW_MAX_AGE_MS - 10;
    expect(await changes.ping()).toBe(true);
    expect((await cache.get(a.id))?.description).toBe('two');
    nowMs = 6001 + CONFIRMED_ROW_MAX_AGE_MS;
    expect(await changes.ping()).toBe(true);
    expect((await cache.get(a.id))?.description).toBe('three');
  });

  it('without pings coming back, serves rows only within the bound, then listens again', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/a', description: 'one' });
    const proxy = await startTcpProxy(5432);
    let nowMs = 0;
    const now = () => nowMs;
    // LISTEN through the proxy; queries and pings go straight to PostgreSQL.
    const changes = feed({
      databaseUrl: proxy.through(db.url),
      now,
      pingAnswerMs: 200,
      retryMs: 20,
    });
    try {
      await changes.listening();
      const cache = createEndpointCache(db.db, { ttlMs: 1000, changes, now });
      nowMs = 1;
      expect((await cache.get(a.id))?.description).toBe('one');
      await setDescription(a.id, 'two');
      nowMs = 500;
      expect(await changes.ping()).toBe(true);

      proxy.cut(); // the LISTEN connection is gone, and postgres.js cannot listen again
      nowMs = 5000;
      expect(await changes.ping()).toBe(false);
      expect((await cache.get(a.id))?.description).toBe('two'); // read again: nothing vouches for it
      await setDescription(a.id, 'three');

      // postgres.js listens again once it can reach PostgreSQL; if it gave up, the feed opens a
      // LISTEN connection of its own after three unanswered pings. Either way pings come back.
      nowMs = 5500;
      proxy.restore();
      let answered = false;
      for (let attempt = 0; attempt < 10 && !answered; attempt++) answered = await changes.ping();
      expect(answered).toBe(true);
      // Read at 5000, before this LISTEN began: a change in the gap could have been missed.
      nowMs = 6200;
      expect((await cache.get(a.id))?.description).toBe('three');
      // Read at 6200, after it: vouched for again.
      await setDescription(a.id, 'four');
      nowMs = 8000;
      expect(await changes.ping()).toBe(true);
      expect((await cache.get(a.id))?.description).toBe('three');
    } finally {
      await changes.close();
      await proxy.close();
    }
  });

  it('opens its LISTEN connection again when pings stop coming back', async () => {
    const proxy = await startTcpProxy(5432);
    const warnings: string[] = [];
    const recording = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const changes = feed({
      databaseUrl: proxy.through(db.url),
      logger: recording,
      pingAnswerMs: 100,
    });
    try {
      await changes.listening();
      proxy.cut();
      for (let ping = 0; ping < 3; ping++) expect(await changes.ping()).toBe(false);
      expect(warnings.join('')).toContain('endpoint change notifications stopped arriving');
      proxy.restore();
      await changes.listening();
      expect(await changes.ping()).toBe(true);
    } finally {
      await changes.close();
      await proxy.close();
    }
  });

  it('vouches for no row while the change triggers are missing (a worker started before migrating)', async () => {
    await db.sql`alter table endpoints disable trigger endpoints_notify_deleted`;
    try {
      let warned!: () => void;
      const warning = new Promise<void>((resolve) => (warned = resolve));
      const recording = pino(
        { level: 'warn' },
        { write: (line: string) => line.includes('change triggers are missing') && warned() },
      );
      const changes = feed({ logger: recording });
      await warning;
      expect(await changes.ping()).toBe(false);
      expect(changes.confirmedFor(Date.now())).toBeUndefined();
    } finally {
      await db.sql`alter table endpoints enable trigger endpoints_notify_deleted`;
    }
  });
});
