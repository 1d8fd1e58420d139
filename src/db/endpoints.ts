import { and, asc, eq, ne, sql } from 'drizzle-orm';
import type postgres from 'postgres';
import { pgArray, type Database } from './client.js';
import { OPERATOR_ENDPOINT_ID } from './operatorMessages.js';
import { endpoints, type EndpointRow } from './schema.js';
import { newId, newSecret } from '../ids.js';

export interface NewEndpoint {
  url: string;
  /** The customer it belongs to; default none (a platform-wide endpoint). */
  ownerId?: string | null | undefined;
  eventTypes?: string[];
  description?: string;
  staleAfterDays?: number | null;
  /** Most requests per second to it, fleet-wide; default none. */
  rateLimitPerSecond?: number | null;
  failingDisableAfterHours?: number | null;
  /** Default 'envelope'. */
  payloadFormat?: 'envelope' | 'raw' | undefined;
  /** Checked by delivery/endpointHeaders.ts; default none. */
  headers?: Record<string, string> | undefined;
  /** Null or absent: HOOKFLEET_RETRY_SCHEDULE. */
  retryScheduleMs?: number[] | null | undefined;
}

export async function insertEndpoint(db: Database, input: NewEndpoint): Promise<EndpointRow> {
  const [row] = await db
    .insert(endpoints)
    .values({
      id: newId('ep'),
      url: input.url,
      ownerId: input.ownerId ?? null,
      secret: newSecret(),
      eventTypes: input.eventTypes ?? [],
      description: input.description ?? '',
      staleAfterDays: input.staleAfterDays ?? null,
      rateLimitPerSecond: input.rateLimitPerSecond ?? null,
      failingDisableAfterHours: input.failingDisableAfterHours ?? null,
      payloadFormat: input.payloadFormat ?? 'envelope',
      headers: input.headers ?? {},
      retryScheduleMs: input.retryScheduleMs ?? null,
    })
    .returning();
  return row!;
}

export async function findEndpoint(db: Database, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.select().from(endpoints).where(eq(endpoints.id, id));
  return row;
}

export async function findEndpointsByIds(
  db: Database,
  ids: readonly string[],
): Promise<EndpointRow[]> {
  if (ids.length === 0) return [];
  return findByIdsStatement(db).execute({ ids: pgArray(ids) });
}

/**
 * Built once per database client: workers read endpoint rows a few at a time, many times a second,
 * and building the query anew each time was most of what Drizzle cost them.
 */
const findByIdsStatements = new WeakMap<Database, ReturnType<typeof prepareFindByIds>>();

function prepareFindByIds(db: Database) {
  return db
    .select()
    .from(endpoints)
    .where(sql`${endpoints.id} = any(${sql.placeholder('ids')}::text[])`)
    .prepare('hookfleet_find_endpoints_by_ids');
}

function findByIdsStatement(db: Database) {
  let statement = findByIdsStatements.get(db);
  if (!statement) {
    statement = prepareFindByIds(db);
    findByIdsStatements.set(db, statement);
  }
  return statement;
}

/**
 * Those of endpoints `ids` that belong to another owner than `ownerId` (null: endpoints without
 * an owner), with their owner: what a send naming them must be refused for. Usually none, so a
 * send to 100 endpoints reads no rows back (reading the whole rows through Drizzle was a fifth
 * of a producer's CPU in the broadcast benchmark).
 */
export async function findEndpointsOfOtherOwners(
  sql: postgres.Sql,
  ids: readonly string[],
  ownerId: string | null,
): Promise<{ id: string; ownerId: string | null }[]> {
  if (ids.length === 0) return [];
  return sql<{ id: string; ownerId: string | null }[]>`
    select id, owner_id as "ownerId" from endpoints
    where id = any(${pgArray(ids)}::text[]) and owner_id is distinct from ${ownerId}`;
}

/**
 * Endpoints ordered by id, `limit` at a time after `afterId`; with `ownerId`, only that owner's
 * (a range of endpoints_owner_idx).
 */
export async function listEndpoints(
  db: Database,
  limit = 100,
  afterId?: string,
  ownerId?: string,
): Promise<EndpointRow[]> {
  return db
    .select()
    .from(endpoints)
    .where(
      and(
        afterId === undefined ? undefined : sql`${endpoints.id} > ${afterId}`,
        // The operator's endpoint is listed to no one (db/operatorMessages.ts).
        ownerId === undefined
          ? ne(endpoints.id, OPERATOR_ENDPOINT_ID)
          : eq(endpoints.ownerId, ownerId),
      ),
    )
    .orderBy(asc(endpoints.id))
    .limit(limit);
}

/**
 * Enables or disables an endpoint; enabling restarts its stale clock and ends its failing streak
 * (it starts again at the next failure), so the failing sweep does not disable it again at once.
 */
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
        ? {
            active: true,
            reactivatedAt: sql`now()`,
            deactivatedAt: null,
            deactivationReason: null,
            failingSince: null,
          }
        : { active: false, deactivatedAt: sql`now()`, deactivationReason: reason },
    )
    .where(eq(endpoints.id, id))
    .returning();
  return row;
}

/**
 * setEndpointActive for a change made by hand, telling whether the state changed: an endpoint
 * already in that state is left alone (disabling one the sweep disabled keeps its reason).
 */
export async function changeEndpointActive(
  db: Database,
  id: string,
  active: boolean,
): Promise<{ row: EndpointRow | undefined; changed: boolean }> {
  const current = await findEndpoint(db, id);
  if (!current || current.active === active) return { row: current, changed: false };
  const row = await setEndpointActive(db, id, active, 'manual');
  return { row, changed: row !== undefined };
}

/**
 * Disables an endpoint if it is active (a receiver answered 410 Gone); undefined when it was not
 * (already disabled, deleted), so exactly one of several concurrent callers reports the change.
 */
export async function disableActiveEndpoint(
  db: Database,
  id: string,
  reason: string,
): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(endpoints)
    .set({ active: false, deactivatedAt: sql`now()`, deactivationReason: reason })
    .where(and(eq(endpoints.id, id), eq(endpoints.active, true)))
    .returning();
  return row;
}

export async function deleteEndpoint(db: Database, id: string): Promise<boolean> {
  const rows = await db
    .delete(endpoints)
    .where(eq(endpoints.id, id))
    .returning({ id: endpoints.id });
  return rows.length > 0;
}

/**
 * The event-type patterns that match `eventType`, most specific first: for `a.b.c` that is
 * `a.b.c`, `a.b.*`, `a.*` and `*`. The fan-out tests an endpoint's event_types for overlap with
 * this list (see insertFannedOutMessage), so prefix wildcards are matched through the partial
 * GIN index on event_types rather than by pattern matching row by row.
 */
export function subscriptionPatterns(eventType: string): string[] {
  const parts = eventType.split('.');
  const patterns = [eventType];
  for (let length = parts.length - 1; length >= 1; length--)
    patterns.push(`${parts.slice(0, length).join('.')}.*`);
  patterns.push('*');
  return patterns;
}

/** Like insertEndpoint, with an id and secret chosen by the caller (the API signs a verification request before the row exists). */
export async function insertEndpointWithSecret(
  db: Database,
  input: NewEndpoint & { id: string; secret: string },
): Promise<EndpointRow> {
  const [row] = await db
    .insert(endpoints)
    .values({
      id: input.id,
      url: input.url,
      ownerId: input.ownerId ?? null,
      secret: input.secret,
      eventTypes: input.eventTypes ?? [],
      description: input.description ?? '',
      staleAfterDays: input.staleAfterDays ?? null,
      rateLimitPerSecond: input.rateLimitPerSecond ?? null,
      failingDisableAfterHours: input.failingDisableAfterHours ?? null,
      payloadFormat: input.payloadFormat ?? 'envelope',
      headers: input.headers ?? {},
      retryScheduleMs: input.retryScheduleMs ?? null,
    })
    .returning();
  return row!;
}

export interface EndpointChanges {
  url?: string | undefined;
  eventTypes?: string[] | undefined;
  description?: string | undefined;
  /** Null restores the default (HOOKFLEET_STALE_AFTER_DAYS). */
  staleAfterDays?: number | null | undefined;
  /** Null removes the limit. */
  rateLimitPerSecond?: number | null | undefined;
  /** Null restores the default (HOOKFLEET_FAILING_DISABLE_AFTER_HOURS). */
  failingDisableAfterHours?: number | null | undefined;
  payloadFormat?: 'envelope' | 'raw' | undefined;
  /** The whole new set (see delivery/endpointHeaders.ts changedHeaders). */
  headers?: Record<string, string> | undefined;
  /** Null restores the default (HOOKFLEET_RETRY_SCHEDULE). */
  retryScheduleMs?: number[] | null | undefined;
}

/** Changes an endpoint's settings; undefined fields are left alone. Undefined result: no such endpoint. */
export async function updateEndpoint(
  db: Database,
  id: string,
  changes: EndpointChanges,
): Promise<EndpointRow | undefined> {
  const set = Object.fromEntries(
    Object.entries(changes).filter(([, value]) => value !== undefined),
  );
  if (Object.keys(set).length === 0) return findEndpoint(db, id);
  const [row] = await db.update(endpoints).set(set).where(eq(endpoints.id, id)).returning();
  return row;
}

/**
 * Gives an endpoint a new secret in one statement: the current one becomes `previous_secret`, which
 * workers keep signing with (a second v1 signature) until `now() + overlapMs`, so receivers can
 * switch secrets without rejecting a delivery. Undefined result: no such endpoint.
 */
export async function rotateEndpointSecret(
  db: Database,
  id: string,
  overlapMs: number,
): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(endpoints)
    .set({
      previousSecret: sql`${endpoints.secret}`,
      secret: newSecret(),
      previousSecretExpiresAt: sql`now() + make_interval(secs => ${overlapMs / 1000})`,
    })
    .where(eq(endpoints.id, id))
    .returning();
  return row;
}
