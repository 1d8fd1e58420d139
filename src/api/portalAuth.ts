/**
 * The /v1 authentication: an API key (HOOKFLEET_API_KEYS) acts for the platform, a live portal
 * session token (portalTokens.ts) for its owner only (scope.ts).
 */
import type { MiddlewareHandler } from 'hono';
import type { Database } from '../db/client.js';
import { looksLikePortalToken, verifyPortalToken } from '../portalTokens.js';
import { secretMatcher } from './auth.js';

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
