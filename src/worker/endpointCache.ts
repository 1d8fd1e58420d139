import type { Database } from '../db/client.js';
import { withDeadline } from '../deadline.js';
import { findEndpointsByIds } from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import type { Metrics } from '../metrics.js';
import type { EndpointChanges } from './endpointChanges.js';

/** Past this many rows, stale ones are evicted, so a fleet with millions of endpoints stays bounded. */
const MAX_CACHED = 50_000;
/**
 * Longest a row is kept on the strength of change notifications alone. They cover every column a
 * delivery reads (drizzle/0003_endpoint_change_notify.sql); this bounds the harm if a later
 * column is read without being added there, or if the trigger is disabled while workers run
 * (they check it only when they LISTEN).
 */
export const CONFIRMED_ROW_MAX_AGE_MS = 60_000;

export interface EndpointCache {
  /** The endpoint row, known current within `ttlMs`; undefined if it does not exist (deleted). */
  get(id: string): Promise<EndpointRow | undefined>;
}

export interface EndpointCacheOptions {
  /** HOOKFLEET_ENDPOINT_CACHE_MS: how stale a served row may be, at most. */
  ttlMs: number;
  /**
   * Change notifications: with them a row stays trusted while pings confirm that no change to it
   * was announced, instead of being read again every `ttlMs`.
   */
  changes?: EndpointChanges | undefined;
  /** How long a refresh may take before known rows are served as they were. Default 1000. */
  refreshTimeoutMs?: number;
  metrics?: Metrics | undefined;
  now?: () => number;
}

interface Cached {
  row: EndpointRow | undefined;
  /** When the query that read it was sent: the row is current as of then, at least. */
  readAtMs: number;
  /** No change to it was announced while it was being read, so later confirmations apply to it. */
  confirmable: boolean;
}

/**
 * Worker-side read of endpoint rows. Lookups made in the same tick are batched into one query
 * (with 50 deliveries in flight that is one query instead of 50). A row is served while it is
 * known current within `ttlMs`: since it was read, or, with change notifications, since the
 * feed's last confirmation. So a disabled endpoint stops receiving within that bound (within
 * milliseconds when notified), and with many endpoints a worker no longer reads nearly a row per
 * delivery (measured: at 5,000 endpoints, most deliveries found their row expired).
 */
export function createEndpointCache(db: Database, options: EndpointCacheOptions): EndpointCache {
  const { ttlMs, changes } = options;
  const now = options.now ?? Date.now;
  const refreshTimeoutMs = options.refreshTimeoutMs ?? 1000;
  const cached = new Map<string, Cached>();
  let batch: Map<string, ((row: EndpointRow | undefined) => void)[]> | undefined;
  let failBatch: ((error: unknown) => void)[] = [];
  // Changes announced while a read was in flight: that read may predate them.
  let loadsInFlight = 0;
  let changeSeq = 0;
  const changedDuringLoads = new Map<string, number>();

  changes?.onChange((id) => {
    cached.delete(id);
    if (loadsInFlight > 0) changedDuringLoads.set(id, ++changeSeq);
  });

  function isCurrent(entry: Cached, nowMs: number): boolean {
    let asOfMs = entry.readAtMs;
    if (entry.confirmable && changes && nowMs - entry.readAtMs < CONFIRMED_ROW_MAX_AGE_MS) {
      asOfMs = Math.max(asOfMs, changes.confirmedFor(entry.readAtMs) ?? asOfMs);
    }
    return nowMs - asOfMs < ttlMs;
  }

  function evictStale() {
    const nowMs = now();
    for (const [id, entry] of cached) if (!isCurrent(entry, nowMs)) cached.delete(id);
  }

  async function load(
    ids: Map<string, ((row: EndpointRow | undefined) => void)[]>,
    fail: ((e: unknown) => void)[],
  ) {
    const readAtMs = now();
    const seqAtStart = changeSeq;
    loadsInFlight += 1;
    try {
      // postgres.js queues queries while it reconnects, without a bound: an outage would hold
      // every delivery waiting on a refresh, so the wait is bounded here.
      const rows = await withDeadline(
        findEndpointsByIds(db, [...ids.keys()]),
        refreshTimeoutMs,
        `endpoint lookup took over ${refreshTimeoutMs} ms`,
      );
      options.metrics?.endpointRowsRead.inc(ids.size);
      const byId = new Map(rows.map((row) => [row.id, row]));
      if (cached.size > MAX_CACHED) evictStale();
      for (const [id, resolvers] of ids) {
        const row = byId.get(id);
        // A missing row is not vouched for by notifications (an insert announces nothing).
        const confirmable = row !== undefined && (changedDuringLoads.get(id) ?? 0) <= seqAtStart;
        cached.set(id, { row, readAtMs, confirmable });
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
    } finally {
      loadsInFlight -= 1;
      if (loadsInFlight === 0) changedDuringLoads.clear();
    }
  }

  return {
    get(id) {
      changes?.wanted();
      const hit = cached.get(id);
      if (hit && isCurrent(hit, now())) return Promise.resolve(hit.row);
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
