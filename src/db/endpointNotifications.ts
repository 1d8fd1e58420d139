/**
 * The two statements of the workers' endpoint-change feed (worker/endpointChanges.ts). The feed
 * LISTENs on a connection of its own; these go through the shared pool: any connection will do,
 * since a NOTIFY reaches every listener of its channel.
 */
import type postgres from 'postgres';

/** Whether drizzle/0003's triggers are there and enabled: without them nothing is announced. */
export async function endpointChangeTriggersInPlace(sql: postgres.Sql): Promise<boolean> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_trigger
    where tgrelid = 'endpoints'::regclass and tgenabled <> 'D'
      and tgname in ('endpoints_notify_changed', 'endpoints_notify_deleted')`;
  return row?.n === 2;
}

/** Sends `payload` to the listeners of `channel` (pg_notify: sent when the statement commits). */
export async function notifyChannel(
  sql: postgres.Sql,
  channel: string,
  payload: string,
): Promise<void> {
  await sql`select pg_notify(${channel}, ${payload})`;
}
