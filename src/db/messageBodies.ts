/** What workers read of a message: the bytes to send and, for a fan-out, its endpoint set. */
import type postgres from 'postgres';
import { pgArray } from './client.js';

export interface MessageToSend {
  /** The payload's exact bytes, signed and sent on every attempt (inside the envelope or bare). */
  body: string;
  /**
   * The Standard Webhooks envelope's type and timestamp (the message's event type and
   * `created_at`), fixed at acceptance; absent for a message accepted before envelopes existed,
   * which every endpoint gets bare.
   */
  envelope?: { type: string; timestamp: string };
  /** The endpoints the message was fanned out to at acceptance, ordered by id. */
  endpointIds: string[];
}

interface MessageToSendRow {
  id: string;
  body: string | null;
  payload: unknown;
  endpoint_ids: string[];
  event_type: string;
  /** Null when the message has no envelope. */
  envelope_timestamp: string | null;
}

// `created_at` formatted by PostgreSQL as JavaScript's toISOString would (UTC, milliseconds,
// truncated), so the envelope's timestamp is the same text on every read.
const columns = (sql: postgres.Sql) => sql`
  id, body, case when body is null then payload end as payload, endpoint_ids, event_type,
  case when envelope
       then to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') end
    as envelope_timestamp`;

function toSend(row: MessageToSendRow): MessageToSend {
  return {
    body: row.body ?? JSON.stringify(row.payload),
    ...(row.envelope_timestamp !== null && {
      envelope: { type: row.event_type, timestamp: row.envelope_timestamp },
    }),
    endpointIds: row.endpoint_ids,
  };
}

/**
 * The message's body and endpoint set, or undefined when the message is gone (pruned by its
 * retention). A message stored before `messages.body` existed has its payload re-serialised,
 * which is what a redelivery of such a message always sent.
 */
export async function findMessageToSend(
  sql: postgres.Sql,
  id: string,
): Promise<MessageToSend | undefined> {
  const [row] = await sql<MessageToSendRow[]>`
    select ${columns(sql)} from messages where id = ${id}`;
  return row && toSend(row);
}

/**
 * findMessageToSend for many messages in one statement (by primary key), keyed by id; ids with
 * no message are absent from the map.
 */
export async function findMessagesToSend(
  sql: postgres.Sql,
  ids: readonly string[],
): Promise<Map<string, MessageToSend>> {
  const rows = await sql<MessageToSendRow[]>`
    select ${columns(sql)} from messages where id = any(${pgArray(ids)}::text[])`;
  return new Map(rows.map((row) => [row.id, toSend(row)]));
}
