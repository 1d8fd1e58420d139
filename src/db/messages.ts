import { eq, sql } from 'drizzle-orm';
import type postgres from 'postgres';
import { pgArray, type Database } from './client.js';
import { subscriptionPatterns } from './endpoints.js';
import { messages, type MessageRow } from './schema.js';

export interface NewMessage {
  id: string;
  eventType: string;
  payload: unknown;
  idempotencyKey?: string | undefined;
  endpointIds: string[];
}

/**
 * Inserts a message; with an idempotency key already taken, inserts nothing and returns
 * undefined (the caller then reads the existing message).
 */
export async function insertMessage(
  db: Database,
  input: NewMessage,
): Promise<MessageRow | undefined> {
  const [row] = await db
    .insert(messages)
    .values({
      id: input.id,
      eventType: input.eventType,
      payload: input.payload,
      idempotencyKey: input.idempotencyKey ?? null,
      endpointIds: input.endpointIds,
    })
    .onConflictDoNothing({ target: messages.idempotencyKey })
    .returning();
  return row;
}

export interface NewFannedOutMessage {
  id: string;
  eventType: string;
  /** The payload as JSON text (the body that will be sent). */
  payloadJson: string;
  idempotencyKey?: string | undefined;
  /** Narrow the fan-out to these endpoints (still only active, subscribed ones). */
  onlyIds?: readonly string[] | undefined;
}

/**
 * Inserts a message together with its fan-out, the active endpoints subscribed to its event type
 * (exact, `prefix.*`, `*` or everything), in one statement: the send path's hot query, served by
 * the partial GIN index on event_types. Returns the endpoint ids, or undefined when the
 * idempotency key is already taken (the caller then reads the existing message).
 */
export async function insertFannedOutMessage(
  sql: postgres.Sql,
  input: NewFannedOutMessage,
): Promise<string[] | undefined> {
  const only =
    input.onlyIds === undefined
      ? sql``
      : sql`and e.id = any(${pgArray([...input.onlyIds])}::text[])`;
  const [row] = await sql<{ endpoint_ids: string[] }[]>`
    insert into messages (id, event_type, payload, idempotency_key, endpoint_ids)
    select ${input.id}, ${input.eventType}, ${input.payloadJson}::jsonb,
           ${input.idempotencyKey ?? null}, coalesce(array_agg(e.id order by e.id), '{}')
    from endpoints e
    where e.active
      and (e.event_types && ${pgArray(subscriptionPatterns(input.eventType))}::text[]
           or e.event_types = '{}'::text[])
      ${only}
    on conflict (idempotency_key) do nothing
    returning endpoint_ids`;
  return row?.endpoint_ids;
}

export async function findMessage(db: Database, id: string): Promise<MessageRow | undefined> {
  const [row] = await db.select().from(messages).where(eq(messages.id, id));
  return row;
}

export async function findMessageByIdempotencyKey(
  db: Database,
  key: string,
): Promise<MessageRow | undefined> {
  const [row] = await db.select().from(messages).where(eq(messages.idempotencyKey, key));
  return row;
}

export async function markMessageEnqueued(db: Database, id: string): Promise<void> {
  await db
    .update(messages)
    .set({ enqueuedAt: sql`now()` })
    .where(eq(messages.id, id));
}
