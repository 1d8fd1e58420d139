/**
 * Portal session tokens: made for POST /v1/owners/:ownerId/portal-sessions, checked by the /v1
 * authentication (api/portalAuth.ts) and the customer portal (dashboard/portalPage.ts).
 *
 * A token is `<session id>.<secret>`: `ps_…` finds the session's row by primary key, and the
 * SHA-256 of the 32-byte random secret is compared with the stored digest in constant time (as
 * auth.ts compares API keys), so response timing says nothing about how much of a guess was
 * right. Every request reads its row, so an expiry or a revocation holds at once in every api
 * process; the read is one primary-key lookup.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from './db/client.js';
import { findPortalSession } from './db/portalSessions.js';
import { newId } from './ids.js';

const TOKEN_PATTERN = /^(ps_[0-9a-z]{1,64})\.([A-Za-z0-9_-]{43})$/;
/** Compared against when no session has the id, so a missing one takes as long as a wrong one. */
const NO_SESSION_DIGEST = digest('no session');

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export interface NewPortalToken {
  sessionId: string;
  token: string;
  /** Hex SHA-256 of the secret part: what portal_sessions stores. */
  tokenHash: string;
}

export function newPortalToken(): NewPortalToken {
  const sessionId = newId('ps');
  const secret = randomBytes(32).toString('base64url');
  return { sessionId, token: `${sessionId}.${secret}`, tokenHash: digest(secret).toString('hex') };
}

/** True when `token` has the form of a portal session token (not whether it is valid). */
export function looksLikePortalToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

export type PortalTokenVerdict =
  { ok: true; ownerId: string; sessionId: string; expiresAt: Date } | { ok: false; detail: string };

/** Checks a portal token against its stored session. */
export async function verifyPortalToken(db: Database, token: string): Promise<PortalTokenVerdict> {
  const match = TOKEN_PATTERN.exec(token);
  if (!match) return { ok: false, detail: 'the API key is not valid' };
  const session = await findPortalSession(db, match[1]!);
  const expected = session ? Buffer.from(session.tokenHash, 'hex') : NO_SESSION_DIGEST;
  const same = expected.length === 32 && timingSafeEqual(digest(match[2]!), expected);
  if (!session || !same) return { ok: false, detail: 'the portal session token is not valid' };
  if (session.revokedAt !== null)
    return { ok: false, detail: 'the portal session was revoked; ask for a new link' };
  if (session.expired)
    return { ok: false, detail: 'the portal session has expired; ask for a new link' };
  return {
    ok: true,
    ownerId: session.ownerId,
    sessionId: session.id,
    expiresAt: session.expiresAt,
  };
}
