import type { Database } from '../db/client.js';
import { withDeadline } from '../deadline.js';
import { findEndpointsByIds } from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';

/** Past this many rows, expired ones are evicted, so a fleet with millions of endpoints stays bounded. */
const MAX_CACHED = 50_000;

export interface EndpointCache {
  /** The endpoint row, at most `ttlMs` old; undefined if it does not exist (deleted). */
  get(id: string): Promise<EndpointRow | undefined>;
}

/**
 * Worker-side read of endpoint rows. Lookups made in the same tick are batched into one query
 * (with 50 deliveries in flight that is one query instead of 50), and rows are trusted for
 * `ttlMs`, so a disabled endpoint stops receiving within that bound without a query per delivery.
 */
export function createEndpointCache(
  db: Database,
  ttlMs: number,
  now: () => number = Date.now,
  /** How long a refresh may take before known rows are served as they were. Default 1000. */
  refreshTimeoutMs = 1000,
): EndpointCache {
  const cached = new Map<string, { row: EndpointRow | undefined; expiresAtMs: number }>();
  let batch: Map<string, ((row: EndpointRow | undefined) => void)[]> | undefined;
  let failBatch: ((error: unknown) => void)[] = [];

  function evictExpired() {
    const nowMs = now();
    for (const [id, entry] of cached) if (entry.expiresAtMs <= nowMs) cached.delete(id);
  }

  async function load(
    ids: Map<string, ((row: EndpointRow | undefined) => void)[]>,
    fail: ((e: unknown) => void)[],
  ) {
    try {
      // postgres.js queues queries while it reconnects, without a bound: an outage would hold
      // every delivery waiting on a refresh, so the wait is bounded here.
      const rows = await withDeadline(
        findEndpointsByIds(db, [...ids.keys()]),
        refreshTimeoutMs,
        `endpoint lookup took over ${refreshTimeoutMs} ms`,
      );
      const byId = new Map(rows.map((row) => [row.id, row]));
      const expiresAtMs = now() + ttlMs;
      if (cached.size > MAX_CACHED) evictExpired();
      for (const [id, resolvers] of ids) {
        const row = byId.get(id);
        cached.set(id, { row, expiresAtMs });
        for (const resolve of resolvers) resolve(row);
      }
    } catch (error) {
      // PostgreSQL unreachable: rows seen before are served as they were (an outage must not stop
      // deliveries to known endpoints); only never-seen endpoints fail, and are postponed.
      for (const [id, resolvers] of ids) {
        const stale = cached.get(id);
        if (stale) for (const resolve of resolvers) resolve(stale.row);
      }
      for (const reject of fail) reject(error);
    }
  }

  return {
    get(id) {
      const hit = cached.get(id);
      if (hit && hit.expiresAtMs > now()) return Promise.resolve(hit.row);
      return new Promise((resolve, reject) => {
        if (!batch) {
          const ids = new Map<string, ((row: EndpointRow | undefined) => void)[]>();
          batch = ids;
          failBatch = [];
          const fail = failBatch;
          // setImmediate rather than a microtask: jobs picked up in the same event-loop turn join one query.
          setImmediate(() => {
            batch = undefined;
            void load(ids, fail);
          });
        }
        const resolvers = batch.get(id) ?? [];
        resolvers.push(resolve);
        batch.set(id, resolvers);
        failBatch.push(reject);
      });
    },
  };
}
