/**
 * Queries of the failing sweep: endpoints whose attempts have failed with no success since
 * `failing_since` (kept by the success recorder, db/deliveryOutcomes.ts). An endpoint failing for
 * longer than its threshold (`coalesce(failing_disable_after_hours, default)` hours) is disabled
 * with reason `failing`; one failing for half of it is warned once per failing streak.
 *
 * Each batch is one statement over the partial index endpoints_failing_since_active_idx, which
 * holds only active endpoints failing right now (few), with row locks taken `skip locked` so two
 * sweeps split the work. A row leaves the batch's condition as it is changed (disabled, or warned
 * after its failing_since), so batches need no paging.
 */
import type postgres from 'postgres';
import { OPERATOR_ENDPOINT_ID } from './operatorMessages.js';
import { toDate } from './staleEndpoints.js';

type Sql = postgres.Sql;

export interface FailingRule {
  /** The sweep's "now". */
  now: Date;
  /** HOOKFLEET_FAILING_DISABLE_AFTER_HOURS. */
  defaultHours: number;
}

/** What a failing batch does: disable the endpoints past their threshold, or warn at half of it. */
export type FailingAction = 'disable' | 'warn';

export interface FailingEndpoint {
  id: string;
  url: string;
  ownerId: string | null;
  lastSuccessAt: Date | null;
  failingSince: Date;
  failingDisableAfterHours: number;
}

interface Returned {
  id: string;
  url: string;
  owner_id: string | null;
  last_success_at: Date | string | null;
  failing_since: Date | string;
  hours: number;
}

/** An endpoint's failing threshold in hours: its own, else the default. */
function threshold(sql: Sql, rule: FailingRule) {
  return sql`coalesce(failing_disable_after_hours, ${rule.defaultHours}::int)`;
}

function where(sql: Sql, rule: FailingRule, action: FailingAction) {
  const now = sql`${rule.now.toISOString()}::timestamptz`;
  // The operator's own endpoint is never disabled: it carries the news of everything else.
  const common = sql`active and failing_since is not null and id <> ${OPERATOR_ENDPOINT_ID}`;
  if (action === 'disable')
    return sql`${common} and failing_since < ${now} - ${threshold(sql, rule)} * interval '1 hour'`;
  // Half the threshold; "warned" means warned after this failing streak began.
  return sql`${common} and failing_since < ${now} - ${threshold(sql, rule)} * interval '30 minutes'
    and (failing_warned_at is null or failing_warned_at < failing_since)`;
}

/** Disables (or marks as warned) up to `limit` failing endpoints and returns them. */
export async function sweepFailingBatch(
  sql: Sql,
  rule: FailingRule,
  action: FailingAction,
  limit: number,
): Promise<FailingEndpoint[]> {
  const set =
    action === 'disable'
      ? sql`active = false, deactivated_at = now(), deactivation_reason = 'failing'`
      : sql`failing_warned_at = ${rule.now.toISOString()}::timestamptz`;
  const rows = await sql<Returned[]>`
    with batch as (
      select id from endpoints where ${where(sql, rule, action)}
      limit ${limit}::int for update skip locked
    )
    update endpoints e set ${set}
    from batch
    where e.id = batch.id and e.active
    returning e.id, e.url, e.owner_id, e.last_success_at, e.failing_since,
      ${threshold(sql, rule)} as hours`;
  return rows.map((row) => ({
    id: row.id,
    url: row.url,
    ownerId: row.owner_id,
    lastSuccessAt: row.last_success_at === null ? null : toDate(row.last_success_at),
    failingSince: toDate(row.failing_since),
    failingDisableAfterHours: row.hours,
  }));
}

/** How many endpoints a failing batch would change now (dry runs). */
export async function countFailing(
  sql: Sql,
  rule: FailingRule,
  action: FailingAction,
): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from endpoints where ${where(sql, rule, action)}`;
  return row?.n ?? 0;
}
