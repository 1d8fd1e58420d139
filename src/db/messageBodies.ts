/** What workers read of a message: the bytes to send and, for a fan-out, its endpoint set. */
import type postgres from 'postgres';
import { pgArray } from './client.js';

export interface MessageToSend {
  /** The exact bytes signed and sent on every attempt. */
  body: string;
  /** The endpoints the message was fanned out to at acceptance, ordered by id. */
  endpointIds: string[];
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
  const [row] = await sql<{ body: string | null; payload: unknown; endpoint_ids: string[] }[]>`
    select body, case when body is null then payload end as payload, endpoint_ids
    from messages where id = ${id}`;
  if (!row) return undefined;
  return { body: row.body ?? JSON.stringify(row.payload), endpointIds: row.endpoint_ids };
}

/**
 * findMessageToSend for many messages in one statement (by primary key), keyed by id; ids with
 * no message are absent from the map.
 */
export async function findMessagesToSend(
  sql: postgres.Sql,
  ids: readonly string[],
): Promise<Map<string, MessageToSend>> {
  const rows = await sql<
    { id: string; body: string | null; payload: unknown; endpoint_ids: string[] }[]
  >`
    select id, body, case when body is null then payload end as payload, endpoint_ids
    from messages where id = any(${pgArray(ids)}::text[])`;
  return new Map(
    rows.map((row) => [
      row.id,
      { body: row.body ?? JSON.stringify(row.payload), endpointIds: row.endpoint_ids },
    ]),
  );
}
