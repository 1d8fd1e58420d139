/**
 * Previous signing secrets past their overlap (rotate-secret keeps the old secret signing until
 * `previous_secret_expires_at`): cleared by the maintenance queue, so a secret that no longer
 * signs anything does not stay readable in the table. Workers already stop signing with it at
 * expiry (worker/deliveryAttempt.ts); clearing it also announces the change to their caches.
 */
import type postgres from 'postgres';

/**
 * Clears at most `limit` expired previous secrets, oldest expiry first, in one statement through
 * endpoints_previous_secret_expires_idx (which holds only endpoints mid-rotation). Rows locked by
 * someone else are skipped, so two runs split the work. Returns how many were cleared.
 */
export async function clearExpiredPreviousSecrets(
  sql: postgres.Sql,
  limit: number,
): Promise<number> {
  const rows = await sql<{ n: number }[]>`
    with cleared as (
      update endpoints set previous_secret = null, previous_secret_expires_at = null
      where id in (
        select id from endpoints
        where previous_secret is not null and previous_secret_expires_at <= now()
        order by previous_secret_expires_at
        limit ${limit}::int
        for update skip locked
      )
      returning 1
    )
    select count(*)::int as n from cleared`;
  return rows[0]?.n ?? 0;
}
