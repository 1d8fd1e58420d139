/**
 * Queries of the endpoint health page (/admin/endpoints): endpoints with their 24 h
 * attempt statistics and stale deadline, a page at a time, in one statement however many rows the
 * page has; and the newest attempts of one endpoint.
 *
 * The statistics are those of GET /v1/endpoints/:id (attempts.ts endpointAttemptStats: count,
 * share succeeded, mean and p95 of duration_ms since a time), computed by a lateral subquery per
 * endpoint of the page, so each is a range scan of attempts_endpoint_time_idx.
 *
 * The stale deadline is the sweep's rule (staleClock.ts): the clock starts at the newest of last
 * success, reactivation and creation, and runs for the endpoint's threshold in days of 24 h.
 */
import {
  and,
  asc,
  desc,
  eq,
  ne,
  getTableColumns,
  gt,
  gte,
  ilike,
  isNotNull,
  or,
  sql,
  type SQL,
} from 'drizzle-orm';
import type { AttemptSelect, EndpointAttemptStats } from './attempts.js';
import type { Database } from './client.js';
import { OPERATOR_ENDPOINT_ID } from './operatorMessages.js';
import { attempts, endpoints, type EndpointRow } from './schema.js';
import { staleDeadline, staleThreshold } from './staleClock.js';

/**
 * The filters of the page's state select. `failing`: failing_since is set (attempts have failed
 * with no success since the first of them), active or not. Not consecutive_failures > 0, which
 * re-enabling leaves as it was while it ends the failing streak.
 */
export const ENDPOINT_STATE_FILTERS = ['all', 'active', 'disabled', 'failing'] as const;
export type EndpointStateFilter = (typeof ENDPOINT_STATE_FILTERS)[number];

/** An endpoint without its secrets, as the health page shows it. */
export type EndpointFacts = Omit<EndpointRow, 'secret' | 'previousSecret'>;

export interface EndpointHealth {
  endpoint: EndpointFacts;
  stats: EndpointAttemptStats;
  /** When the sweep will deactivate it unless it succeeds first (also set for disabled ones). */
  staleAt: Date;
  /** Its threshold: its own stale_after_days, else the default. */
  staleAfterDays: number;
}

export interface EndpointHealthQuery {
  /** Attempts since this time count in the statistics (the page uses 24 h ago). */
  since: Date;
  /** HOOKFLEET_STALE_AFTER_DAYS, the threshold of endpoints without one of their own. */
  defaultStaleAfterDays: number;
  /** Part of a URL or description (case-insensitive), or an exact id. */
  search?: string | undefined;
  /** Default 'all'. */
  state?: EndpointStateFilter | undefined;
  /** Rows after this id (the page's cursor; ids are time-ordered). */
  afterId?: string | undefined;
  /** Only this owner's endpoints (endpoints_owner_idx). */
  ownerId?: string | undefined;
  /** Only this endpoint (the detail view). */
  id?: string | undefined;
  /** Default 100. */
  limit?: number;
}

export interface EndpointCounts {
  all: number;
  active: number;
  disabled: number;
  failing: number;
}

const {
  secret: _secret,
  previousSecret: _previousSecret,
  ...factColumns
} = getTableColumns(endpoints);

/** `%`, `_` and `\` match themselves in the ILIKE pattern. */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function stateCondition(state: EndpointStateFilter): SQL | undefined {
  switch (state) {
    case 'active':
      return eq(endpoints.active, true);
    case 'disabled':
      return eq(endpoints.active, false);
    case 'failing':
      return isNotNull(endpoints.failingSince);
    case 'all':
      return undefined;
  }
}

function searchCondition(search: string | undefined): SQL | undefined {
  if (search === undefined || search === '') return undefined;
  const pattern = containsPattern(search);
  return or(
    eq(endpoints.id, search),
    ilike(endpoints.url, pattern),
    ilike(endpoints.description, pattern),
  );
}

/** Endpoints matching `query`, ordered by id, with their statistics: one statement. */
export async function listEndpointHealth(
  db: Database,
  query: EndpointHealthQuery,
): Promise<EndpointHealth[]> {
  const stats = db
    .select({
      attempts: sql<number>`count(*)::int`.as('attempts'),
      succeeded: sql<number>`(count(*) filter (where ${attempts.outcome} = 'succeeded'))::int`.as(
        'succeeded',
      ),
      meanLatencyMs: sql<number | null>`avg(${attempts.durationMs})::float8`.as('mean_latency_ms'),
      p95LatencyMs: sql<
        number | null
      >`(percentile_cont(0.95) within group (order by ${attempts.durationMs}))::float8`.as(
        'p95_latency_ms',
      ),
    })
    .from(attempts)
    .where(and(eq(attempts.endpointId, endpoints.id), gte(attempts.attemptedAt, query.since)))
    .as('stats');
  const rows = await db
    .select({
      endpoint: factColumns,
      attempts: stats.attempts,
      succeeded: stats.succeeded,
      meanLatencyMs: stats.meanLatencyMs,
      p95LatencyMs: stats.p95LatencyMs,
      staleAfterDays: staleThreshold<SQL<number>>(sql, query.defaultStaleAfterDays),
      staleAt: staleDeadline<SQL>(sql, query.defaultStaleAfterDays).mapWith(endpoints.createdAt),
    })
    .from(endpoints)
    .leftJoinLateral(stats, sql`true`)
    .where(
      and(
        // The operator's endpoint is no customer endpoint: only its own page shows it.
        query.id === undefined
          ? ne(endpoints.id, OPERATOR_ENDPOINT_ID)
          : eq(endpoints.id, query.id),
        query.ownerId === undefined ? undefined : eq(endpoints.ownerId, query.ownerId),
        query.afterId === undefined ? undefined : gt(endpoints.id, query.afterId),
        stateCondition(query.state ?? 'all'),
        searchCondition(query.search),
      ),
    )
    .orderBy(asc(endpoints.id))
    .limit(query.limit ?? 100);
  return rows.map((row) => ({
    endpoint: row.endpoint,
    stats: toStats(row),
    staleAt: row.staleAt,
    staleAfterDays: row.staleAfterDays,
  }));
}

/** One endpoint's health, or undefined when there is no such endpoint. */
export async function findEndpointHealth(
  db: Database,
  id: string,
  query: Pick<EndpointHealthQuery, 'since' | 'defaultStaleAfterDays'>,
): Promise<EndpointHealth | undefined> {
  const [row] = await listEndpointHealth(db, { ...query, id, limit: 1 });
  return row;
}

/**
 * How many endpoints each state filter shows (search aside; only `ownerId`'s when given), for
 * the filter's labels.
 */
export async function countEndpointsByState(
  db: Database,
  ownerId?: string,
): Promise<EndpointCounts> {
  const [row] = await db
    .select({
      all: sql<number>`count(*)::int`,
      active: sql<number>`(count(*) filter (where ${endpoints.active}))::int`,
      failing: sql<number>`(count(*) filter (where ${endpoints.failingSince} is not null))::int`,
    })
    .from(endpoints)
    .where(
      ownerId === undefined
        ? ne(endpoints.id, OPERATOR_ENDPOINT_ID)
        : eq(endpoints.ownerId, ownerId),
    );
  const all = row?.all ?? 0;
  const active = row?.active ?? 0;
  return { all, active, disabled: all - active, failing: row?.failing ?? 0 };
}

/** The newest `limit` attempts of one endpoint, newest first (attempts_endpoint_time_idx). */
export async function recentAttempts(
  db: Database,
  endpointId: string,
  limit = 50,
): Promise<AttemptSelect[]> {
  return db
    .select()
    .from(attempts)
    .where(eq(attempts.endpointId, endpointId))
    .orderBy(desc(attempts.attemptedAt), desc(attempts.id))
    .limit(limit);
}

interface StatsColumns {
  attempts: number | null;
  succeeded: number | null;
  meanLatencyMs: number | null;
  p95LatencyMs: number | null;
}

/** The same shape and rounding (0.1 ms) as endpointAttemptStats. */
function toStats(row: StatsColumns): EndpointAttemptStats {
  const total = row.attempts ?? 0;
  const succeeded = row.succeeded ?? 0;
  return {
    attempts: total,
    succeeded,
    failed: total - succeeded,
    successRate: total === 0 ? null : succeeded / total,
    meanLatencyMs: roundOrNull(row.meanLatencyMs),
    p95LatencyMs: roundOrNull(row.p95LatencyMs),
  };
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(Number(value) * 10) / 10;
}
