import { eq, sql } from 'drizzle-orm';
import type { Database } from './client.js';
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
