/**
 * Recent activity, for the customer portal and GET /v1/messages: newest messages (a range of
 * messages_owner_created_at_idx) and its endpoints' newest attempts (per endpoint, a range of
 * attempts_endpoint_time_idx, merged: an owner has a handful of endpoints).
 */
import { and, desc, eq, sql } from 'drizzle-orm';
import type { AttemptSelect } from './attempts.js';
import type { Database } from './client.js';
import { messages, type MessageRow } from './schema.js';
import { toDate } from './staleEndpoints.js';

export type OwnerMessage = Pick<MessageRow, 'id' | 'eventType' | 'createdAt' | 'endpointIds'> & {
  ownerId?: string | null;
};

/** The owner's newest `limit` messages, newest first. */
export function listOwnerMessages(
  db: Database,
  ownerId: string,
  limit = 20,
): Promise<OwnerMessage[]> {
  return listMessagesPage(db, { ownerId, limit });
}

/**
 * Messages newest first, `limit` at a time after `beforeId` (the last of the previous page);
 * with `ownerId`, only that owner's (a range of messages_owner_created_at_idx), else every
 * message (messages_created_at_idx).
 */
export async function listMessagesPage(
  db: Database,
  options: { ownerId?: string | undefined; limit: number; beforeId?: string | undefined },
): Promise<OwnerMessage[]> {
  const { ownerId, beforeId } = options;
  return db
    .select({
      id: messages.id,
      eventType: messages.eventType,
      ownerId: messages.ownerId,
      createdAt: messages.createdAt,
      endpointIds: messages.endpointIds,
    })
    .from(messages)
    .where(
      and(
        ownerId === undefined ? undefined : eq(messages.ownerId, ownerId),
        beforeId === undefined
          ? undefined
          : sql`(${messages.createdAt}, ${messages.id}) < (select created_at, id from messages where id = ${beforeId})`,
      ),
    )
    .orderBy(desc(messages.createdAt), desc(messages.id))
    .limit(options.limit);
}

/** The newest `limit` attempts to any of the owner's endpoints, newest first. */
export async function recentOwnerAttempts(
  db: Database,
  ownerId: string,
  limit = 50,
): Promise<AttemptSelect[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select a.id, a.message_id, a.endpoint_id, a.attempt_number, a.attempted_at, a.outcome,
           a.status_code, a.duration_ms, a.error
    from endpoints e
    cross join lateral (
      select * from attempts where attempts.endpoint_id = e.id
      order by attempted_at desc, id desc limit ${limit}::int) a
    where e.owner_id = ${ownerId}
    order by a.attempted_at desc, a.id desc
    limit ${limit}::int`);
  return [...rows].map((row) => ({
    id: Number(row.id),
    messageId: String(row.message_id),
    endpointId: String(row.endpoint_id),
    attemptNumber: Number(row.attempt_number),
    attemptedAt: toDate(row.attempted_at as Date | string),
    outcome: String(row.outcome),
    statusCode: row.status_code === null ? null : Number(row.status_code),
    durationMs: Number(row.duration_ms),
    error: typeof row.error === 'string' ? row.error : null,
  }));
}
