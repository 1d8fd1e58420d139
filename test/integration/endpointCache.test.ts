import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDbClient } from '../../src/db/client.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { createEndpointCache } from '../../src/worker/endpointCache.js';
import { startTcpProxy } from '../helpers/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('createEndpointCache', () => {
  it('batches lookups made together into one query and serves rows until they expire', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/a' });
    const b = await insertEndpoint(db.db, { url: 'http://127.0.0.1/b' });
    let nowMs = 0;
    const cache = createEndpointCache(db.db, { ttlMs: 1000, now: () => nowMs });
    const [rowA, rowB, missing] = await Promise.all([
      cache.get(a.id),
      cache.get(b.id),
      cache.get('ep_none'),
    ]);
    expect(rowA?.url).toBe(a.url);
    expect(rowB?.url).toBe(b.url);
    expect(missing).toBeUndefined();

    await db.sql`update endpoints set url = 'http://127.0.0.1/changed' where id = ${a.id}`;
    expect((await cache.get(a.id))?.url).toBe(a.url); // still fresh
    nowMs = 1001;
    expect((await cache.get(a.id))?.url).toBe('http://127.0.0.1/changed');
  });

  it('keeps serving rows it has seen while PostgreSQL is unreachable, and fails only unknown ones', async () => {
    const known = await insertEndpoint(db.db, { url: 'http://127.0.0.1/known' });
    const unknown = await insertEndpoint(db.db, { url: 'http://127.0.0.1/unknown' });
    const proxy = await startTcpProxy(5432);
    const viaProxy = createDbClient(proxy.through(db.url), { max: 1 });
    let nowMs = 0;
    const cache = createEndpointCache(viaProxy.db, { ttlMs: 1000, now: () => nowMs });
    try {
      expect((await cache.get(known.id))?.url).toBe(known.url);
      proxy.cut();
      nowMs = 5000; // the cached row has expired; the refresh cannot reach the database
      expect((await cache.get(known.id))?.url).toBe(known.url);
      await expect(cache.get(unknown.id)).rejects.toThrow();
      // A fresh read stands for the row as it is now: a copy from before the outage will not do.
      await expect(cache.fresh(known.id)).rejects.toThrow();
    } finally {
      // Not viaProxy.close(): postgres.js waits out close()'s whole 5 s for a connection whose
      // connect the cut broke off, and there is nothing left here to let finish.
      await viaProxy.sql.end({ timeout: 0 });
      await proxy.close();
    }
  });

  it('reads a row afresh on demand, however recently it was read, and serves the new copy after', async () => {
    const a = await insertEndpoint(db.db, { url: 'http://127.0.0.1/a' });
    const cache = createEndpointCache(db.db, { ttlMs: 600_000, now: () => 0 });
    const [cached, missing] = await Promise.all([cache.get(a.id), cache.get('ep_later')]);
    expect(cached?.active).toBe(true);
    expect(missing).toBeUndefined();

    await db.sql`update endpoints set active = false where id = ${a.id}`;
    expect((await cache.get(a.id))?.active).toBe(true); // current enough for get
    const [fresh, stillMissing] = await Promise.all([cache.fresh(a.id), cache.fresh('ep_later')]);
    expect(fresh?.active).toBe(false);
    expect(stillMissing).toBeUndefined();
    expect((await cache.get(a.id))?.active).toBe(false);
  });
});
