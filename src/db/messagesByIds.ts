import { inArray } from 'drizzle-orm';
import type { Database } from './client.js';
import { messages, type MessageRow } from './schema.js';

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
