import type { Database } from '../db/client.js';
import { withDeadline } from '../deadline.js';
import { findEndpointsByIds } from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import type { Metrics } from '../metrics.js';
import type { EndpointChanges } from './endpointChanges.js';
import { turnBatch } from '../turnBatch.js';

/** Most rows one query reads (a worker's attempt slots bound a turn's lookups anyway). */
const MAX_BATCH = 500;
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
  /**
   * The endpoint row read from PostgreSQL now, whatever is cached (and cached in its place);
   * lookups made together share one query. Rejects when PostgreSQL does not answer within
   * `refreshTimeoutMs`: unlike `get`, it never serves a row it has seen before instead.
   */
  fresh(id: string): Promise<EndpointRow | undefined>;
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

  /** Reads rows from PostgreSQL, within `refreshTimeoutMs`, and caches what it found. */
  async function readRows(ids: readonly string[]): Promise<Map<string, EndpointRow>> {
    const readAtMs = now();
    const seqAtStart = changeSeq;
    loadsInFlight += 1;
    try {
      // postgres.js queues queries while it reconnects, without a bound: an outage would hold
      // every delivery waiting on a refresh, so the wait is bounded here.
      const rows = await withDeadline(
        findEndpointsByIds(db, ids),
        refreshTimeoutMs,
        `endpoint lookup took over ${refreshTimeoutMs} ms`,
      );
      options.metrics?.endpointRowsRead.inc(ids.length);
      const byId = new Map(rows.map((row) => [row.id, row]));
      if (cached.size > MAX_CACHED) evictStale();
      for (const id of ids) {
        const row = byId.get(id);
        // A missing row is not vouched for by notifications (an insert announces nothing).
        const confirmable = row !== undefined && (changedDuringLoads.get(id) ?? 0) <= seqAtStart;
        // A `get` and a `fresh` read of one row may overlap: the one sent last is kept.
        const known = cached.get(id);
        if (!known || known.readAtMs <= readAtMs) cached.set(id, { row, readAtMs, confirmable });
      }
      return byId;
    } finally {
      loadsInFlight -= 1;
      if (loadsInFlight === 0) changedDuringLoads.clear();
    }
  }

  // Each read answers one row (or none) per id asked for, in order.
  const rowsOf = (ids: readonly string[], rows: Map<string, EndpointRow>) =>
    ids.map((id) => rows.get(id));

  const load = turnBatch(async (ids: readonly string[]) => {
    try {
      return rowsOf(ids, await readRows([...new Set(ids)]));
    } catch (error) {
      // PostgreSQL unreachable: rows seen before are served as they were (an outage must not stop
      // deliveries to known endpoints); only never-seen endpoints fail, and are postponed.
      const failure = error instanceof Error ? error : new Error(String(error));
      return ids.map((id) => {
        const stale = cached.get(id);
        return stale ? stale.row : failure;
      });
    }
  }, MAX_BATCH);

  const loadFresh = turnBatch(
    async (ids: readonly string[]) => rowsOf(ids, await readRows([...new Set(ids)])),
    MAX_BATCH,
  );

  return {
    get(id) {
      changes?.wanted();
      const hit = cached.get(id);
      if (hit && isCurrent(hit, now())) return Promise.resolve(hit.row);
      return load(id);
    },
    fresh: loadFresh,
  };
}
