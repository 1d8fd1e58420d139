import { eq, inArray, sql } from 'drizzle-orm';
import type postgres from 'postgres';
import { pgArray, type Database } from './client.js';
import { subscriptionPatterns } from './endpoints.js';
import { messages, type MessageRow } from './schema.js';

export interface NewMessage {
  id: string;
  eventType: string;
  /** The owner of its endpoints; default none. */
  ownerId?: string | null | undefined;
  payload: unknown;
  /** The payload as JSON text: the exact bytes signed and sent. */
  body: string;
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
      ownerId: input.ownerId ?? null,
      payload: input.payload,
      body: input.body,
      envelope: true,
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
  /** Fan out to this owner's endpoints only; undefined: only to endpoints without an owner. */
  ownerId?: string | undefined;
  /** The payload as JSON text (the body that will be sent). */
  payloadJson: string;
  idempotencyKey?: string | undefined;
  /** Narrow the fan-out to these endpoints (still only active, subscribed ones). */
  onlyIds?: readonly string[] | undefined;
}

/**
 * Inserts a message together with its fan-out, the active endpoints of its owner (or, without
 * one, without an owner) subscribed to its event type (exact, `prefix.*`, `*` or everything), in
 * one statement: the send path's hot query, served by the partial GIN index on event_types for
 * ownerless messages and by endpoints_owner_idx for an owner's. Returns the endpoint ids, or undefined when the
 * idempotency key is already taken (the caller then reads the existing message).
 */
export async function insertFannedOutMessage(
  sql: postgres.Sql,
  input: NewFannedOutMessage,
): Promise<string[] | undefined> {
  return (await insertFannedOutMessages(sql, [input])).get(input.id);
}

/**
 * insertFannedOutMessage for many messages in one statement (group commit, issue #5): one round
 * trip and one transaction for a batch of sends. Returns the endpoint ids of each message
 * inserted, by id; a message missing from the map was not inserted because its idempotency key
 * is taken (also by an earlier message of the same batch). One message PostgreSQL cannot store
 * (e.g. a `\u0000` in its payload) fails the whole statement.
 *
 * The batch travels as one JSON parameter whose `payload` fields are the payload texts spliced
 * in as they are, so no payload is serialised or escaped a second time; `body` keeps that text
 * exactly (a `json` value's text is its input, byte for byte). Messages narrowed to
 * `onlyIds` look their endpoints up by primary key; the others through the GIN index.
 */
export async function insertFannedOutMessages(
  sql: postgres.Sql,
  inputs: readonly NewFannedOutMessage[],
): Promise<Map<string, string[]>> {
  const rows = inputs.map(
    (input) =>
      `{"id":${JSON.stringify(input.id)},"event_type":${JSON.stringify(input.eventType)},` +
      `"owner_id":${JSON.stringify(input.ownerId ?? null)},` +
      `"idempotency_key":${JSON.stringify(input.idempotencyKey ?? null)},` +
      `"patterns":${JSON.stringify(subscriptionPatterns(input.eventType))},` +
      `"only_ids":${JSON.stringify(input.onlyIds ?? null)},` +
      `"payload":${input.payloadJson}}`,
  );
  const inserted = await sql<{ id: string; endpoint_ids: string[] }[]>`
    insert into messages (id, event_type, owner_id, payload, body, envelope, idempotency_key,
                          endpoint_ids)
    select m.id, m.event_type, m.owner_id, m.payload::jsonb, m.payload::text, true,
           m.idempotency_key,
           -- Each branch names its owner condition literally, so the planner can match it to
           -- the partial index it is written for.
           coalesce(case
             when m.only_ids is not null
             then (select array_agg(e.id order by e.id) from endpoints e
                   where e.id = any(m.only_ids) and e.active
                     and e.owner_id is not distinct from m.owner_id
                     and (e.event_types && m.patterns or e.event_types = '{}'::text[]))
             when m.owner_id is null
             then (select array_agg(e.id order by e.id) from endpoints e
                   where e.active and e.owner_id is null
                     and (e.event_types && m.patterns or e.event_types = '{}'::text[]))
             else (select array_agg(e.id order by e.id) from endpoints e
                   where e.owner_id = m.owner_id and e.active
                     and (e.event_types && m.patterns or e.event_types = '{}'::text[]))
           end, '{}')
    from json_to_recordset(${`[${rows.join(',')}]`}::json)
      as m(id text, event_type text, owner_id text, idempotency_key text, patterns text[],
           only_ids text[], payload json)
    on conflict (idempotency_key) do nothing
    returning id, endpoint_ids`;
  return new Map(inserted.map((row) => [row.id, row.endpoint_ids]));
}

export async function findMessage(db: Database, id: string): Promise<MessageRow | undefined> {
  const [row] = await db.select().from(messages).where(eq(messages.id, id));
  return row;
}

/**
 * The messages with these ids, in one statement (by primary key), keyed by id; ids with no
 * message are absent from the map. Replaying a page of failed deliveries needs each one's payload.
 */
export async function findMessagesByIds(
  db: Database,
  ids: readonly string[],
): Promise<Map<string, MessageRow>> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return new Map();
  const rows = await db.select().from(messages).where(inArray(messages.id, unique));
  return new Map(rows.map((row) => [row.id, row]));
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

/**
 * Deletes the messages with these ids that are not marked enqueued: sends whose enqueue failed
 * and whose callers were told nothing was kept.
 */
export async function deleteUnqueuedMessages(
  sql: postgres.Sql,
  ids: readonly string[],
): Promise<void> {
  if (ids.length === 0) return;
  await sql`delete from messages where id = any(${pgArray(ids)}::text[]) and enqueued_at is null`;
}

/** markMessageEnqueued for a batch of messages, in one statement. */
export async function markMessagesEnqueued(
  sql: postgres.Sql,
  ids: readonly string[],
): Promise<void> {
  if (ids.length === 0) return;
  await sql`update messages set enqueued_at = now() where id = any(${pgArray(ids)}::text[])`;
}

export interface NewPingMessage {
  id: string;
  endpointId: string;
  /** The payload as JSON text (the body that will be sent, in the envelope). */
  payloadJson: string;
}

/**
 * Inserts one `eventType` message per endpoint, each restricted to its endpoint whatever event
 * types it subscribes to (the stale sweep's `hookfleet.ping` asks "are you there", not "do you
 * want this"). The owner is read from the endpoint row in the same statement, so the message
 * belongs to the endpoint's owner by construction and the fan-out's owner rule holds. An
 * endpoint no longer active gets none. Returns the ids of the messages inserted.
 */
export async function insertPingMessages(
  sql: postgres.Sql,
  eventType: string,
  pings: readonly NewPingMessage[],
): Promise<string[]> {
  if (pings.length === 0) return [];
  const rows = pings.map(
    (ping) =>
      `{"id":${JSON.stringify(ping.id)},"endpoint_id":${JSON.stringify(ping.endpointId)},` +
      `"payload":${ping.payloadJson}}`,
  );
  const inserted = await sql<{ id: string }[]>`
    insert into messages (id, event_type, owner_id, payload, body, envelope, endpoint_ids)
    select m.id, ${eventType}, e.owner_id, m.payload::jsonb, m.payload::text, true, array[e.id]
    from json_to_recordset(${`[${rows.join(',')}]`}::json)
      as m(id text, endpoint_id text, payload json)
    join endpoints e on e.id = m.endpoint_id and e.active
    returning id`;
  return inserted.map((row) => row.id);
}
