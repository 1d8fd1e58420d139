import { and, arrayOverlaps, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from './client.js';
import { endpoints, type EndpointRow } from './schema.js';
import { newId, newSecret } from '../ids.js';

export interface NewEndpoint {
  url: string;
  eventTypes?: string[];
  description?: string;
  staleAfterDays?: number | null;
}

export async function insertEndpoint(db: Database, input: NewEndpoint): Promise<EndpointRow> {
  const [row] = await db
    .insert(endpoints)
    .values({
      id: newId('ep'),
      url: input.url,
      secret: newSecret(),
      eventTypes: input.eventTypes ?? [],
      description: input.description ?? '',
      staleAfterDays: input.staleAfterDays ?? null,
    })
    .returning();
  return row!;
}

export async function findEndpoint(db: Database, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.select().from(endpoints).where(eq(endpoints.id, id));
  return row;
}

export async function findEndpointsByIds(db: Database, ids: readonly string[]): Promise<EndpointRow[]> {
  if (ids.length === 0) return [];
  return db.select().from(endpoints).where(inArray(endpoints.id, [...ids]));
}

export async function listEndpoints(db: Database, limit = 100, afterId?: string): Promise<EndpointRow[]> {
  return db
    .select()
    .from(endpoints)
    .where(afterId === undefined ? undefined : sql`${endpoints.id} > ${afterId}`)
    .orderBy(asc(endpoints.id))
    .limit(limit);
}

/**
 * Ids of the active endpoints that receive `eventType`: those subscribed to it, to `*`, or to
 * everything (empty list). Served by the partial GIN index on event_types plus the small set of
 * catch-all endpoints. `onlyIds` narrows the fan-out to the endpoints a caller named.
 */
export async function findSubscribedEndpointIds(
  db: Database,
  eventType: string,
  onlyIds?: readonly string[],
): Promise<string[]> {
  const subscribed = sql`(${arrayOverlaps(endpoints.eventTypes, [eventType, '*'])} or ${endpoints.eventTypes} = '{}'::text[])`;
  const rows = await db
    .select({ id: endpoints.id })
    .from(endpoints)
    .where(
      and(
        eq(endpoints.active, true),
        subscribed,
        onlyIds === undefined ? undefined : inArray(endpoints.id, [...onlyIds]),
      ),
    );
  return rows.map((row) => row.id);
}

/** Enables or disables an endpoint; enabling restarts its stale clock. */
export async function setEndpointActive(
  db: Database,
  id: string,
  active: boolean,
  reason = 'manual',
): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(endpoints)
    .set(
      active
        ? { active: true, reactivatedAt: sql`now()`, deactivatedAt: null, deactivationReason: null }
        : { active: false, deactivatedAt: sql`now()`, deactivationReason: reason },
    )
    .where(eq(endpoints.id, id))
    .returning();
  return row;
}

export async function deleteEndpoint(db: Database, id: string): Promise<boolean> {
  const rows = await db.delete(endpoints).where(eq(endpoints.id, id)).returning({ id: endpoints.id });
  return rows.length > 0;
}
