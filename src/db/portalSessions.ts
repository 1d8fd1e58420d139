/**
 * Customer portal sessions (schema.ts portalSessions): created by the platform, read on every
 * request that carries a portal token, revoked by the platform. Rows are found by primary key;
 * the token's secret part is checked by the caller against `token_hash` (api/portalTokens.ts).
 */
import { and, eq, isNull, lt, sql } from 'drizzle-orm';
import type postgres from 'postgres';
import type { Database } from './client.js';
import { portalSessions, type PortalSessionRow } from './schema.js';

export interface NewPortalSession {
  id: string;
  ownerId: string;
  tokenHash: string;
  expiresInSeconds: number;
}

/**
 * How long a session that ended (expired or revoked) is kept before it is deleted: long enough to
 * tell "this token has expired" from "this token never existed" in a support conversation.
 */
export const ENDED_SESSION_GRACE_SQL = "interval '1 day'";

/**
 * Stores a session expiring `expiresInSeconds` from the database's now (one clock for every api
 * process). Also deletes the owner's sessions that ended more than a day ago, so the table holds
 * no more than a day of each owner's history without a sweep of its own.
 */
export async function insertPortalSession(
  db: Database,
  input: NewPortalSession,
): Promise<PortalSessionRow> {
  await db
    .delete(portalSessions)
    .where(
      and(
        eq(portalSessions.ownerId, input.ownerId),
        lt(portalSessions.expiresAt, sql`now() - ${sql.raw(ENDED_SESSION_GRACE_SQL)}`),
      ),
    );
  const [row] = await db
    .insert(portalSessions)
    .values({
      id: input.id,
      ownerId: input.ownerId,
      tokenHash: input.tokenHash,
      expiresAt: sql`now() + make_interval(secs => ${input.expiresInSeconds})`,
    })
    .returning();
  return row!;
}

/** A session with whether it is usable now, by the database's clock; undefined when none has the id. */
export async function findPortalSession(
  db: Database,
  id: string,
): Promise<(PortalSessionRow & { expired: boolean }) | undefined> {
  const [row] = await db
    .select({
      session: portalSessions,
      expired: sql<boolean>`${portalSessions.expiresAt} <= now()`,
    })
    .from(portalSessions)
    .where(eq(portalSessions.id, id));
  return row && { ...row.session, expired: row.expired };
}

/**
 * Revokes the owner's sessions that are not revoked yet (only `sessionId`, when given). Returns
 * how many were revoked. Takes effect on the next request: every request reads its session.
 */
export async function revokePortalSessions(
  db: Database,
  ownerId: string,
  sessionId?: string,
): Promise<number> {
  const rows = await db
    .update(portalSessions)
    .set({ revokedAt: sql`now()` })
    .where(
      and(
        eq(portalSessions.ownerId, ownerId),
        isNull(portalSessions.revokedAt),
        sessionId === undefined ? undefined : eq(portalSessions.id, sessionId),
      ),
    )
    .returning({ id: portalSessions.id });
  return rows.length;
}

/**
 * Deletes at most `limit` sessions that ended (expired, or revoked) more than a day ago, oldest
 * first, in one statement through portal_sessions_ended_idx: owners who never open a new session
 * would otherwise keep theirs forever. Returns how many were deleted.
 */
export async function pruneEndedPortalSessions(sql: postgres.Sql, limit: number): Promise<number> {
  const ended = sql`least(expires_at, revoked_at)`;
  const rows = await sql<{ n: number }[]>`
    with gone as (
      delete from portal_sessions where id in (
        select id from portal_sessions
        where ${ended} < now() - ${sql.unsafe(ENDED_SESSION_GRACE_SQL)}
        order by ${ended}
        limit ${limit}::int
        for update skip locked
      )
      returning 1
    )
    select count(*)::int as n from gone`;
  return rows[0]?.n ?? 0;
}
