/**
 * Portal session tokens, and the /v1 authentication that accepts them beside the API keys.
 *
 * A token is `<session id>.<secret>`: `ps_…` finds the session's row by primary key, and the
 * SHA-256 of the 32-byte random secret is compared with the stored digest in constant time (as
 * auth.ts compares API keys), so response timing says nothing about how much of a guess was
 * right. Every request reads its row, so an expiry or a revocation holds at once in every api
 * process; the read is one primary-key lookup.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Database } from '../db/client.js';
import { findPortalSession } from '../db/portalSessions.js';
import { newId } from '../ids.js';
import { secretMatcher } from './auth.js';

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

type Verdict =
  { ok: true; ownerId: string; sessionId: string; expiresAt: Date } | { ok: false; detail: string };

/** Checks a portal token against its stored session. */
export async function verifyPortalToken(db: Database, token: string): Promise<Verdict> {
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

/**
 * `Authorization: Bearer <key>` with one of `apiKeys` (scope: the platform) or a live portal
 * session token (scope: its owner); otherwise 401 `{code: 'unauthorized'}`.
 */
export function requireApiKeyOrPortalToken(
  apiKeys: readonly string[],
  db: Database,
): MiddlewareHandler {
  const isApiKey = secretMatcher(apiKeys);
  return async (c, next) => {
    const match = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '');
    const key = match?.[1];
    if (key !== undefined && apiKeys.length > 0 && isApiKey(key)) {
      c.set('scope', { kind: 'platform' });
      return next();
    }
    if (key !== undefined && looksLikePortalToken(key)) {
      const verdict = await verifyPortalToken(db, key);
      if (verdict.ok) {
        c.set('scope', { kind: 'owner', ownerId: verdict.ownerId, sessionId: verdict.sessionId });
        return next();
      }
      return unauthorized(c, verdict.detail);
    }
    return unauthorized(
      c,
      key !== undefined
        ? 'the API key is not valid'
        : 'missing or malformed Authorization header; expected Bearer <key> (keys are set by HOOKFLEET_API_KEYS)',
    );
  };
}

function unauthorized(c: Parameters<MiddlewareHandler>[0], detail: string): Response {
  return c.json({ code: 'unauthorized', detail }, 401, {
    'www-authenticate': 'Bearer realm="hookfleet"',
  });
}
