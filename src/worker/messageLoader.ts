/**
 * Reads message rows for fan-outs, batched: the reads asked for in the same turn of the event
 * loop go to PostgreSQL as one query by primary key. With one endpoint per message (a customer's
 * own events) every delivery is a fan-out, so one SELECT each would put PostgreSQL back on the
 * path of every delivery; batched, the ~50 fan-outs a worker starts together cost one.
 */
import type postgres from 'postgres';
import { findMessagesToSend, type MessageToSend } from '../db/messageBodies.js';
import { turnBatch } from '../turnBatch.js';

export type MessageLoader = (messageId: string) => Promise<MessageToSend | undefined>;

/** Most message rows one query reads (a worker's fan-out slots bound a turn's anyway). */
const MAX_BATCH = 500;

export function createMessageLoader(sql: postgres.Sql): MessageLoader {
  return turnBatch(async (ids: readonly string[]) => {
    const found = await findMessagesToSend(sql, [...new Set(ids)]);
    return ids.map((id) => found.get(id));
  }, MAX_BATCH);
}
