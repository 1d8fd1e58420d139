/**
 * Queries of the stale-endpoint sweep (issue #4), on the raw postgres.js client: each is one
 * short statement over at most `limit` rows, so a sweep of millions of endpoints holds no lock
 * for long and never blocks deliveries.
 *
 * The stale clock of an endpoint is `coalesce(last_success_at, reactivated_at, created_at)`; it
 * is stale when the clock is older than its threshold, `coalesce(stale_after_days, default)`
 * days (24 h each). Two scans keep every statement index-bound whatever the thresholds are:
 * - `default`: a range scan of `endpoints_stale_clock_active_idx` up to the default cutoff,
 *   filtered by the endpoint's own threshold (endpoints with a longer one are skipped), paged by
 *   clock so skipped rows are read once per sweep;
 * - `custom`: the endpoints with a threshold *shorter* than the default, through
 *   `endpoints_stale_after_days_active_idx` (usually a handful of rows).
 */
import type postgres from 'postgres';

type Sql = postgres.Sql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** Which index a batch walks; see the module comment. */
export type StaleScan = 'default' | 'custom';

export interface StaleRule {
  /** The sweep's "now"; every cutoff is computed from it. */
  now: Date;
  /** HOOKFLEET_STALE_AFTER_DAYS: the threshold of endpoints without `stale_after_days`. */
  defaultDays: number;
  /** HOOKFLEET_STALE_WARNING_DAYS: how long before its threshold an endpoint is warned. */
  warningDays: number;
}

/** An endpoint the sweep deactivated, warned, or would deactivate. */
export interface StaleEndpoint {
  id: string;
  url: string;
  lastSuccessAt: Date | null;
  /** When its stale clock started: last success, else reactivation, else creation. */
  clockStartedAt: Date;
  /** Its threshold: its own `stale_after_days`, else the default. */
  staleAfterDays: number;
}

const DAY_MS = 86_400_000;

const CLOCK = 'coalesce(last_success_at, reactivated_at, created_at)';

function daysBefore(now: Date, days: number): Date {
  return new Date(now.getTime() - days * DAY_MS);
}

/** Conditions of "stale now" for one scan (`afterClock` pages the default scan). */
function staleWhere(sql: Sql, rule: StaleRule, scan: StaleScan, afterClock?: Date): Fragment {
  const clock = sql.unsafe(CLOCK);
  const own = sql`${rule.now}::timestamptz - coalesce(stale_after_days, ${rule.defaultDays}::int) * interval '24 hours'`;
  if (scan === 'default') {
    return sql`active
      ${afterClock === undefined ? sql`` : sql`and ${clock} >= ${afterClock}::timestamptz`}
      and ${clock} < ${daysBefore(rule.now, rule.defaultDays)}::timestamptz
      and ${clock} < ${own}`;
  }
  // Rows before the default cutoff belong to the default scan; leaving them out here keeps
  // counts exact (no endpoint in both scans).
  return sql`active
    and stale_after_days < ${rule.defaultDays}::int
    and ${clock} >= ${daysBefore(rule.now, rule.defaultDays)}::timestamptz
    and ${clock} < ${own}`;
}

/** Conditions of "inside the warning window, not stale yet, not warned since the clock started". */
function warningWhere(sql: Sql, rule: StaleRule, scan: StaleScan, afterClock?: Date): Fragment {
  const clock = sql.unsafe(CLOCK);
  const threshold = sql`coalesce(stale_after_days, ${rule.defaultDays}::int)`;
  const windowOpen = sql`${rule.now}::timestamptz - greatest(${threshold} - ${rule.warningDays}::int, 0) * interval '24 hours'`;
  const defaultWindowOpen = daysBefore(rule.now, rule.defaultDays - rule.warningDays);
  const common = sql`${clock} < ${windowOpen}
    and ${clock} >= ${rule.now}::timestamptz - ${threshold} * interval '24 hours'
    and (stale_warned_at is null or stale_warned_at <= ${clock})`;
  if (scan === 'default') {
    return sql`active
      ${afterClock === undefined ? sql`` : sql`and ${clock} >= ${afterClock}::timestamptz`}
      and ${clock} < ${defaultWindowOpen}::timestamptz
      and ${common}`;
  }
  return sql`active
    and stale_after_days < ${rule.defaultDays}::int
    and ${clock} >= ${defaultWindowOpen}::timestamptz
    and ${common}`;
}

/** The candidate rows of one batch, locked; rows another sweep (or a success flush) holds are skipped. */
function candidates(sql: Sql, where: Fragment, scan: StaleScan, limit: number): Fragment {
  // Ordering the default scan by clock makes it a walk of the clock index that stops after
  // `limit` matches; the custom scan is small and needs no order.
  const order = scan === 'default' ? sql`order by ${sql.unsafe(CLOCK)}` : sql``;
  return sql`select id from endpoints where ${where} ${order} limit ${limit}::int for update skip locked`;
}

interface Returned {
  id: string;
  url: string;
  last_success_at: Date | null;
  clock: Date;
  stale_after_days: number;
}

function returning(sql: Sql, rule: StaleRule): Fragment {
  return sql`e.id, e.url, e.last_success_at,
    coalesce(e.last_success_at, e.reactivated_at, e.created_at) as clock,
    coalesce(e.stale_after_days, ${rule.defaultDays}::int) as stale_after_days`;
}

function toStaleEndpoint(row: Returned): StaleEndpoint {
  return {
    id: row.id,
    url: row.url,
    lastSuccessAt: row.last_success_at,
    clockStartedAt: row.clock,
    staleAfterDays: row.stale_after_days,
  };
}

/**
 * Deactivates up to `limit` stale endpoints of one scan and returns them, oldest clock first.
 * `where e.active` plus the row lock make it idempotent: an endpoint is returned by exactly one
 * of two overlapping sweeps.
 */
export async function deactivateStaleBatch(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  limit: number,
  afterClock?: Date,
): Promise<StaleEndpoint[]> {
  const rows = await sql<Returned[]>`
    with batch as (${candidates(sql, staleWhere(sql, rule, scan, afterClock), scan, limit)})
    update endpoints e
    set active = false, deactivated_at = now(), deactivation_reason = 'stale'
    from batch
    where e.id = batch.id and e.active
    returning ${returning(sql, rule)}`;
  return sortByClock(rows.map(toStaleEndpoint));
}

/** Marks up to `limit` endpoints of one scan as warned (`stale_warned_at = now`) and returns them. */
export async function warnStaleBatch(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  limit: number,
  afterClock?: Date,
): Promise<StaleEndpoint[]> {
  const rows = await sql<Returned[]>`
    with batch as (${candidates(sql, warningWhere(sql, rule, scan, afterClock), scan, limit)})
    update endpoints e
    set stale_warned_at = ${rule.now}::timestamptz
    from batch
    where e.id = batch.id and e.active
    returning ${returning(sql, rule)}`;
  return sortByClock(rows.map(toStaleEndpoint));
}

/** How many endpoints are stale now (what a sweep would deactivate). */
export async function countStale(sql: Sql, rule: StaleRule): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select (select count(*) from endpoints where ${staleWhere(sql, rule, 'default')})
         + (select count(*) from endpoints where ${staleWhere(sql, rule, 'custom')}) as n`;
  return Number(row?.n ?? 0);
}

/** How many endpoints a sweep would warn now. */
export async function countWarnings(sql: Sql, rule: StaleRule): Promise<number> {
  if (rule.warningDays <= 0) return 0;
  const [row] = await sql<{ n: number }[]>`
    select (select count(*) from endpoints where ${warningWhere(sql, rule, 'default')})
         + (select count(*) from endpoints where ${warningWhere(sql, rule, 'custom')}) as n`;
  return Number(row?.n ?? 0);
}

/** Up to `limit` of the stale endpoints, oldest clock first, for a dry run's report. */
export async function sampleStale(sql: Sql, rule: StaleRule, limit: number): Promise<StaleEndpoint[]> {
  const select = (scan: StaleScan) => sql`
    (select id, url, last_success_at, ${sql.unsafe(CLOCK)} as clock,
       coalesce(stale_after_days, ${rule.defaultDays}::int) as stale_after_days
     from endpoints where ${staleWhere(sql, rule, scan)}
     order by ${sql.unsafe(CLOCK)} limit ${limit}::int)`;
  const rows = await sql<Returned[]>`${select('default')} union all ${select('custom')} order by clock limit ${limit}::int`;
  return rows.map(toStaleEndpoint);
}

/** The plan of one default-scan batch, for the bench (it must name endpoints_stale_clock_active_idx). */
export async function explainStaleBatch(sql: Sql, rule: StaleRule, limit: number): Promise<string[]> {
  const rows = await sql<{ 'QUERY PLAN': string }[]>`
    explain ${candidates(sql, staleWhere(sql, rule, 'default'), 'default', limit)}`;
  return rows.map((row) => row['QUERY PLAN']);
}

/**
 * Deletes up to `limit` attempt rows older than `before`, oldest first, through
 * attempts_attempted_at_idx; returns how many and the newest time deleted (to page on).
 */
export async function pruneAttemptsBatch(
  sql: Sql,
  before: Date,
  limit: number,
  after?: Date,
): Promise<{ deleted: number; lastAttemptedAt: Date | undefined }> {
  const rows = await sql<{ n: number; last: Date | null }[]>`
    with gone as (
      delete from attempts where id in (
        select id from attempts
        where attempted_at < ${before}::timestamptz
          ${after === undefined ? sql`` : sql`and attempted_at >= ${after}::timestamptz`}
        order by attempted_at
        limit ${limit}::int
        for update skip locked
      )
      returning attempted_at
    )
    select count(*)::int as n, max(attempted_at) as last from gone`;
  const row = rows[0];
  return { deleted: row?.n ?? 0, lastAttemptedAt: row?.last ?? undefined };
}

/** How many attempt rows are older than `before`. */
export async function countPrunableAttempts(sql: Sql, before: Date): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from attempts where attempted_at < ${before}::timestamptz`;
  return row?.n ?? 0;
}

function sortByClock(rows: StaleEndpoint[]): StaleEndpoint[] {
  return rows.sort((a, b) => a.clockStartedAt.getTime() - b.clockStartedAt.getTime());
}
