/**
 * Queries of the stale-endpoint sweep, on the raw postgres.js client: each is one
 * short statement over at most `limit` rows, so a sweep of millions of endpoints holds no lock
 * for long and never blocks deliveries. The stale clock, its index expression and the threshold
 * are staleClock.ts's, shared with the endpoint health page.
 *
 * Two scans keep every statement index-bound whatever the thresholds are:
 * - `default`: a range scan of `endpoints_stale_clock_active_idx` up to the default cutoff,
 *   filtered by the endpoint's own threshold (endpoints with a longer one are skipped), paged by
 *   the indexed clock so skipped rows are read once per sweep (again only when they share the
 *   indexed clock, e.g. the day of their last success, with the last row of a batch);
 * - `custom`: the endpoints with a threshold *shorter* than the default, through
 *   `endpoints_stale_after_days_active_idx` (usually a handful of rows).
 */
import type postgres from 'postgres';
import { OPERATOR_ENDPOINT_ID } from './operatorMessages.js';
import { indexedStaleClock, staleClock, staleThreshold } from './staleClock.js';

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
  /**
   * HOOKFLEET_STALE_PROBE_GRACE_HOURS, or undefined for a sweep that cannot send probes (no
   * queue at hand): then every stale endpoint is deactivated, idle or not.
   */
  probeGraceHours?: number | undefined;
}

/** An endpoint the sweep deactivated, warned, or would deactivate. */
export interface StaleEndpoint {
  id: string;
  url: string;
  /** The customer it belongs to (null: platform-wide), so an operator knows whom to tell. */
  ownerId: string | null;
  lastSuccessAt: Date | null;
  /** When its stale clock started: the newest of last success, reactivation and creation. */
  clockStartedAt: Date;
  /** Position in endpoints_stale_clock_active_idx, which the default scan pages by. */
  indexedClock: Date;
  /** Its threshold: its own `stale_after_days`, else the default. */
  staleAfterDays: number;
}

const DAY_MS = 86_400_000;

/** Dates go as ISO text: postgres.js cannot serialise a Date where the server leaves a parameter's type open (EXPLAIN). */
function iso(date: Date): string {
  return date.toISOString();
}

function daysBefore(now: Date, days: number): Date {
  return new Date(now.getTime() - days * DAY_MS);
}

/**
 * The part of the active endpoints a scan reads: for the default scan, the index range below
 * `defaultCutoff` (from `afterIndexedClock` on); for the custom scan, the shorter thresholds
 * outside that range, so no endpoint is in both and counts add up.
 */
function scanRange(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  defaultCutoff: Date,
  afterIndexedClock?: Date,
): Fragment {
  const indexed = indexedStaleClock(sql);
  // The operator's endpoint is never swept: it carries the news of everything else.
  const active = sql`active and id <> ${OPERATOR_ENDPOINT_ID}`;
  if (scan === 'default') {
    return sql`${active}
      ${afterIndexedClock === undefined ? sql`` : sql`and ${indexed} >= ${iso(afterIndexedClock)}::timestamptz`}
      and ${indexed} < ${iso(defaultCutoff)}::timestamptz`;
  }
  return sql`${active}
    and stale_after_days < ${rule.defaultDays}::int
    and ${indexed} >= ${iso(defaultCutoff)}::timestamptz`;
}

/**
 * Conditions of "stale now, and due to be deactivated": with probing, an idle endpoint (no failed
 * attempt since its clock started: it got no deliveries, which says nothing of its health) is
 * deactivated only once a probe sent since its clock started has gone unanswered for the grace
 * period; one whose attempts failed is deactivated at once, as before probing existed.
 */
function staleWhere(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  afterIndexedClock?: Date,
): Fragment {
  const stale = staleOnlyWhere(sql, rule, scan, afterIndexedClock);
  if (rule.probeGraceHours === undefined) return stale;
  const clock = staleClock(sql);
  return sql`${stale}
    and (last_failure_at >= ${clock}
      or (stale_probed_at >= ${clock}
        and stale_probed_at <= ${iso(rule.now)}::timestamptz - ${rule.probeGraceHours}::int * interval '1 hour'))`;
}

/** Conditions of "stale now, idle, and not probed since its clock started": due a hookfleet.ping. */
function probeWhere(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  afterIndexedClock?: Date,
): Fragment {
  const clock = staleClock(sql);
  return sql`${staleOnlyWhere(sql, rule, scan, afterIndexedClock)}
    and (last_failure_at is null or last_failure_at < ${clock})
    and (stale_probed_at is null or stale_probed_at < ${clock})`;
}

/** Conditions of "stale now". */
function staleOnlyWhere(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  afterIndexedClock?: Date,
): Fragment {
  const range = scanRange(
    sql,
    rule,
    scan,
    daysBefore(rule.now, rule.defaultDays),
    afterIndexedClock,
  );
  return sql`${range}
    and ${staleClock(sql)} < ${iso(rule.now)}::timestamptz - ${staleThreshold(sql, rule.defaultDays)} * interval '24 hours'`;
}

/** Conditions of "inside the warning window, not stale yet, not warned since the clock started". */
function warningWhere(
  sql: Sql,
  rule: StaleRule,
  scan: StaleScan,
  afterIndexedClock?: Date,
): Fragment {
  const clock = staleClock(sql);
  const threshold = staleThreshold(sql, rule.defaultDays);
  const range = scanRange(
    sql,
    rule,
    scan,
    daysBefore(rule.now, rule.defaultDays - rule.warningDays),
    afterIndexedClock,
  );
  // "Warned" means warned after the clock started, so a newer success or a reactivation
  // re-arms the warning without anything having to reset stale_warned_at.
  return sql`${range}
    and ${clock} < ${iso(rule.now)}::timestamptz - greatest(${threshold} - ${rule.warningDays}::int, 0) * interval '24 hours'
    and ${clock} >= ${iso(rule.now)}::timestamptz - ${threshold} * interval '24 hours'
    and (stale_warned_at is null or stale_warned_at <= ${clock})`;
}

/** The candidate rows of one batch, locked; rows another sweep (or a success flush) holds are skipped. */
function candidates(sql: Sql, where: Fragment, scan: StaleScan, limit: number): Fragment {
  // Ordering the default scan by the indexed clock makes it a walk of the index that stops
  // after `limit` matches; the custom scan is small and needs no order.
  const order = scan === 'default' ? sql`order by ${indexedStaleClock(sql)}` : sql``;
  return sql`select id from endpoints where ${where} ${order} limit ${limit}::int for update skip locked`;
}

/** Timestamps as they come back: Drizzle's postgres-js driver makes the raw client return them as text. */
type Timestamp = Date | string;

interface Returned {
  id: string;
  url: string;
  owner_id: string | null;
  last_success_at: Timestamp | null;
  clock: Timestamp;
  indexed_clock: Timestamp;
  stale_after_days: number;
}

/** PostgreSQL's text form ('2025-01-02 03:04:05.123456+00') as a Date (to the millisecond). */
export function toDate(value: Timestamp): Date {
  if (value instanceof Date) return value;
  const date = new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
  if (Number.isNaN(date.getTime()))
    throw new Error(`unexpected timestamp from PostgreSQL: ${value}`);
  return date;
}

/** The database's clock, so a sweep judges staleness by the same clock that wrote the rows. */
export async function databaseNow(sql: Sql): Promise<Date> {
  const [row] = await sql<{ now: Timestamp }[]>`select now() as now`;
  return toDate(row!.now);
}

/** What the sweep's UPDATEs return; the stale-rule expressions unqualified, as `batch` has only `id`. */
function returning(sql: Sql, rule: StaleRule): Fragment {
  return sql`e.id, e.url, e.owner_id, e.last_success_at,
    ${staleClock(sql)} as clock, ${indexedStaleClock(sql)} as indexed_clock,
    ${staleThreshold(sql, rule.defaultDays)} as stale_after_days`;
}

function toStaleEndpoint(row: Returned): StaleEndpoint {
  return {
    id: row.id,
    url: row.url,
    ownerId: row.owner_id,
    lastSuccessAt: row.last_success_at === null ? null : toDate(row.last_success_at),
    clockStartedAt: toDate(row.clock),
    indexedClock: toDate(row.indexed_clock),
    staleAfterDays: row.stale_after_days,
  };
}

/**
 * What a sweep batch does: deactivate stale endpoints, warn those inside the warning window, or
 * mark idle stale ones as probed (the caller sends their hookfleet.ping).
 */
export type StaleAction = 'deactivate' | 'warn' | 'probe';

/**
 * Deactivates up to `limit` stale endpoints of one scan (`deactivate`), or marks up to `limit`
 * endpoints inside the warning window as warned (`warn`: `stale_warned_at = now`), and returns
 * them, oldest clock first. The default scan pages: pass the greatest `indexedClock` returned as
 * `afterIndexedClock`. `where e.active` plus the row lock make it idempotent: an endpoint is
 * returned by exactly one of two overlapping sweeps.
 */
export async function sweepStaleBatch(
  sql: Sql,
  rule: StaleRule,
  action: StaleAction,
  scan: StaleScan,
  limit: number,
  afterIndexedClock?: Date,
): Promise<StaleEndpoint[]> {
  const [where, set] =
    action === 'deactivate'
      ? [
          staleWhere(sql, rule, scan, afterIndexedClock),
          sql`active = false, deactivated_at = now(), deactivation_reason = 'stale'`,
        ]
      : action === 'probe'
        ? [
            probeWhere(sql, rule, scan, afterIndexedClock),
            sql`stale_probed_at = ${iso(rule.now)}::timestamptz`,
          ]
        : [
            warningWhere(sql, rule, scan, afterIndexedClock),
            sql`stale_warned_at = ${iso(rule.now)}::timestamptz`,
          ];
  const rows = await sql<Returned[]>`
    with batch as (${candidates(sql, where, scan, limit)})
    update endpoints e
    set ${set}
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

/** How many idle stale endpoints a sweep would probe now (none without probing). */
export async function countProbes(sql: Sql, rule: StaleRule): Promise<number> {
  if (rule.probeGraceHours === undefined) return 0;
  const [row] = await sql<{ n: number }[]>`
    select (select count(*) from endpoints where ${probeWhere(sql, rule, 'default')})
         + (select count(*) from endpoints where ${probeWhere(sql, rule, 'custom')}) as n`;
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
export async function sampleStale(
  sql: Sql,
  rule: StaleRule,
  limit: number,
): Promise<StaleEndpoint[]> {
  const select = (scan: StaleScan) => sql`
    (select id, url, owner_id, last_success_at, ${staleClock(sql)} as clock, ${indexedStaleClock(sql)} as indexed_clock,
       ${staleThreshold(sql, rule.defaultDays)} as stale_after_days
     from endpoints where ${staleWhere(sql, rule, scan)}
     order by ${staleClock(sql)} limit ${limit}::int)`;
  const rows = await sql<
    Returned[]
  >`${select('default')} union all ${select('custom')} order by clock limit ${limit}::int`;
  return rows.map(toStaleEndpoint);
}

/**
 * The plan of one batch, for the bench: the default scan must use endpoints_stale_clock_active_idx,
 * the custom one endpoints_stale_after_days_active_idx.
 */
export async function explainStaleBatch(
  sql: Sql,
  rule: StaleRule,
  limit: number,
  scan: StaleScan = 'default',
): Promise<string[]> {
  const rows = await sql<{ 'QUERY PLAN': string }[]>`
    explain ${candidates(sql, staleWhere(sql, rule, scan), scan, limit)}`;
  return rows.map((row) => row['QUERY PLAN']);
}

/**
 * The history the sweep prunes, each with the time column its retention counts from; each has an
 * index on that column (attempts_attempted_at_idx, messages_created_at_idx).
 */
export const PRUNABLE = {
  attempts: { table: 'attempts', time: 'attempted_at' },
  messages: { table: 'messages', time: 'created_at' },
} as const;
export type Prunable = (typeof PRUNABLE)[keyof typeof PRUNABLE];

/**
 * Deletes up to `limit` rows of `what` older than `before`, oldest first, from `after` on (the
 * newest time the previous batch deleted), so each batch is one short range scan of the time
 * index however large the table is. Returns how many and the newest time deleted (to page on).
 * A message's attempt rows stay until their own retention: the endpoint health figures read them.
 */
export async function pruneBatch(
  sql: Sql,
  what: Prunable,
  before: Date,
  limit: number,
  after?: Date,
): Promise<{ deleted: number; lastTime: Date | undefined }> {
  const table = sql(what.table);
  const time = sql(what.time);
  const rows = await sql<{ n: number; last: Timestamp | null }[]>`
    with gone as (
      delete from ${table} where id in (
        select id from ${table}
        where ${time} < ${iso(before)}::timestamptz
          ${after === undefined ? sql`` : sql`and ${time} >= ${iso(after)}::timestamptz`}
        order by ${time}
        limit ${limit}::int
        for update skip locked
      )
      returning ${time} as t
    )
    select count(*)::int as n, max(t) as last from gone`;
  const row = rows[0];
  const last = row?.last ?? null;
  return { deleted: row?.n ?? 0, lastTime: last === null ? undefined : toDate(last) };
}

/** How many rows of `what` pruneBatch would delete (dry runs and progress). */
export async function countPrunable(sql: Sql, what: Prunable, before: Date): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from ${sql(what.table)}
    where ${sql(what.time)} < ${iso(before)}::timestamptz`;
  return row?.n ?? 0;
}

function sortByClock(rows: StaleEndpoint[]): StaleEndpoint[] {
  return rows.sort((a, b) => a.clockStartedAt.getTime() - b.clockStartedAt.getTime());
}
