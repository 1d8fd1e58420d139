/**
 * Reads message rows for fan-outs, batched: the reads asked for in the same turn of the event
 * loop go to PostgreSQL as one query by primary key. With one endpoint per message (a customer's
 * own events) every delivery is a fan-out, so one SELECT each would put PostgreSQL back on the
 * path of every delivery; batched, the ~50 fan-outs a worker starts together cost one.
 */
import type postgres from 'postgres';
import { findMessagesToSend, type MessageToSend } from '../db/messageBodies.js';

export type MessageLoader = (messageId: string) => Promise<MessageToSend | undefined>;

interface Waiting {
  resolve: (message: MessageToSend | undefined) => void;
  reject: (error: unknown) => void;
}

export function createMessageLoader(sql: postgres.Sql): MessageLoader {
  let batch: Map<string, Waiting[]> | undefined;

  async function run(ids: Map<string, Waiting[]>): Promise<void> {
    try {
      const found = await findMessagesToSend(sql, [...ids.keys()]);
      for (const [id, waiting] of ids) for (const w of waiting) w.resolve(found.get(id));
    } catch (error) {
      for (const waiting of ids.values()) for (const w of waiting) w.reject(error);
    }
  }

  return (messageId) =>
    new Promise((resolve, reject) => {
      if (!batch) {
        const current = new Map<string, Waiting[]>();
        batch = current;
        setImmediate(() => {
          batch = undefined;
          void run(current);
        });
      }
      const waiting = batch.get(messageId) ?? [];
      waiting.push({ resolve, reject });
      batch.set(messageId, waiting);
    });
}
