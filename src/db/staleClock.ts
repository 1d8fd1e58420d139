/**
 * The stale rule, written once for the sweep (staleEndpoints.ts) and the endpoint health page
 * (endpointHealth.ts), so the deadline the page shows and the one the sweep acts on cannot drift.
 *
 * The stale clock of an endpoint starts at its newest of last success, reactivation and creation:
 * `greatest(last_success_at, reactivated_at, created_at)` (greatest skips nulls). It is stale
 * when the clock is older than its threshold, `coalesce(stale_after_days, default)` days of 24 h.
 *
 * Why greatest and not the `coalesce(last_success_day, reactivated_at, created_at)` of the index
 * `endpoints_stale_clock_active_idx`: coalesce ignores a reactivation whenever the endpoint has
 * succeeded once, so an endpoint re-enabled after a year would be deactivated again by the next
 * sweep. The index still bounds every scan, because coalesce <= greatest (`last_success_day` is
 * `last_success_at` rounded down to its UTC day; schema.ts says why the index holds the day):
 * `coalesce < cutoff` is the index condition, `greatest < cutoff` the filter.
 *
 * Each expression is built by the caller's own SQL template tag: the sweep's postgres.js `sql`,
 * the health page's Drizzle `sql`. Column names are unqualified; every statement using them reads
 * `endpoints` alone or with tables that have no such columns.
 */

const DAY_MS = 86_400_000;

/** A tagged template that builds an SQL fragment (postgres.js's `sql` or Drizzle's). */
type SqlTag<Fragment> = (
  strings: TemplateStringsArray,
  ...values: (number | Fragment)[]
) => Fragment;

/** When an endpoint's stale clock started (see the module comment). */
export function staleClock<Fragment>(sql: SqlTag<Fragment>): Fragment {
  return sql`greatest(last_success_at, reactivated_at, created_at)`;
}

/**
 * The expression of endpoints_stale_clock_active_idx (schema.ts), always <= staleClock. It must
 * stay the index's expression to the letter, or the planner cannot use the index; a test checks
 * the sweep's plan (staleSweep.test.ts, "stale sweep query plan").
 */
export function indexedStaleClock<Fragment>(sql: SqlTag<Fragment>): Fragment {
  return sql`coalesce(last_success_day, reactivated_at, created_at)`;
}

/** An endpoint's threshold in days: its own stale_after_days, else `defaultDays`. */
export function staleThreshold<Fragment>(sql: SqlTag<Fragment>, defaultDays: number): Fragment {
  return sql`coalesce(stale_after_days, ${defaultDays}::int)`;
}

/** When the sweep deactivates an endpoint unless it succeeds first: the clock plus its threshold. */
export function staleDeadline<Fragment>(sql: SqlTag<Fragment>, defaultDays: number): Fragment {
  return sql`${staleClock(sql)} + ${staleThreshold(sql, defaultDays)} * interval '24 hours'`;
}

/** staleDeadline of a row already read: when its clock started plus its threshold, in days of 24 h. */
export function staleDeadlineOf(clockStartedAt: Date, staleAfterDays: number): Date {
  return new Date(clockStartedAt.getTime() + staleAfterDays * DAY_MS);
}
