/**
 * `/v1/owners/:ownerId`: what the platform does for one of its customers beyond endpoints and
 * messages. API keys only; a portal session token is refused (403).
 *
 *   POST   /:ownerId/portal-sessions             201 {id, ownerId, token, url, expiresAt}
 *   DELETE /:ownerId/portal-sessions             revokes every live session of the owner
 *   DELETE /:ownerId/portal-sessions/:sessionId  revokes one (404 when the owner has no such one)
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { DbClient } from '../db/client.js';
import { insertPortalSession, revokePortalSessions } from '../db/portalSessions.js';
import { HookfleetError } from '../errors.js';
import { parseInput } from '../producer/sendInput.js';
import { createPortalSessionRequest, PORTAL_SESSION_SECONDS } from './contracts.js';
import { readJson } from './jsonBody.js';
import { newPortalToken } from '../portalTokens.js';
import { platformOnly } from './scope.js';
import { ownerIdSchema } from '../ids.js';

const BODY_LIMIT_BYTES = 4096;
/** The path's owner id, checked so a 422 names the `ownerId` field. */
const ownerParamSchema = z.object({ ownerId: ownerIdSchema });

export interface OwnerRoutesDeps {
  dbClient: DbClient;
  /** Path of the customer portal page, joined to the request's origin in the session's `url`. */
  portalPath: string;
}

export function ownerRoutes(deps: OwnerRoutesDeps): Hono {
  const { db } = deps.dbClient;
  const app = new Hono();

  app.use('*', platformOnly('manage portal sessions'));

  const ownerParam = (value: string | undefined) =>
    parseInput(ownerParamSchema, { ownerId: value ?? '' }).ownerId;

  app.post('/:ownerId/portal-sessions', async (c) => {
    const ownerId = ownerParam(c.req.param('ownerId'));
    const input = await readJson(c, createPortalSessionRequest, {
      limitBytes: BODY_LIMIT_BYTES,
      optional: true,
    });
    const { sessionId, token, tokenHash } = newPortalToken();
    const row = await insertPortalSession(db, {
      id: sessionId,
      ownerId,
      tokenHash,
      expiresInSeconds: input.expiresInSeconds ?? PORTAL_SESSION_SECONDS.default,
    });
    // In the fragment, which browsers send neither to the server nor in a Referer.
    const url = `${new URL(c.req.url).origin}${deps.portalPath}#${token}`;
    return c.json(
      { id: row.id, ownerId, token, url, expiresAt: row.expiresAt.toISOString() },
      201,
      { 'cache-control': 'no-store' },
    );
  });

  app.delete('/:ownerId/portal-sessions', async (c) => {
    const ownerId = ownerParam(c.req.param('ownerId'));
    return c.json({ revoked: await revokePortalSessions(db, ownerId) });
  });

  app.delete('/:ownerId/portal-sessions/:sessionId', async (c) => {
    const ownerId = ownerParam(c.req.param('ownerId'));
    const sessionId = c.req.param('sessionId');
    if ((await revokePortalSessions(db, ownerId, sessionId)) === 0) {
      throw new HookfleetError(
        'not_found',
        `owner ${ownerId} has no live portal session ${JSON.stringify(sessionId.slice(0, 100))}`,
        404,
      );
    }
    return c.body(null, 204);
  });

  return app;
}
