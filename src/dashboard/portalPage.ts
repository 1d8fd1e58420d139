/**
 * The customer portal, server-rendered HTML that the API server mounts at /portal (api/app.ts):
 * what one owner's people see of their webhooks, opened from the `url` of a portal session.
 *
 *   GET  /                         the owner's endpoints with health, recent messages, attempts,
 *                                  and a form to add an endpoint
 *   POST /session                  {token} -> the session cookie (the token exchange, below)
 *   POST /endpoints                adds an endpoint; the answer shows its secret, once
 *   GET  /endpoints/:id            one endpoint: edit form, enable/disable, replay, attempts
 *   POST /endpoints/:id            saves the form                  } each redirects back
 *   POST /endpoints/:id/enable     enables (restarts the clock)    } with the outcome
 *   POST /endpoints/:id/disable    disables ('manual')             } (POST-redirect-GET)
 *   POST /endpoints/:id/replay     replays failures of 7 days      }
 *
 * The token travels in the URL's fragment, which browsers send neither to the server (so no
 * access log holds it) nor in a Referer. A few lines of inline script, allowed by their hash in
 * the CSP, post it to /session and drop it from the address bar; the answer sets an HttpOnly
 * cookie holding the token, limited to this path. Over https the cookie is SameSite=None;
 * Secure; Partitioned, so the portal works inside the platform's frame (frame-ancestors from
 * HOOKFLEET_PORTAL_FRAME_ANCESTORS); over plain http, where browsers refuse SameSite=None, it
 * is Strict. Every request checks the session again, so a revocation holds at once. POSTs are
 * refused unless sent from these pages (refuseCrossSite.ts, requireOrigin).
 */
import type { ShardedQueue } from '../queueShards.js';
import { createHash } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { getCookie } from 'hono/cookie';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import { findEndpointHealth, listEndpointHealth, recentAttempts } from '../db/endpointHealth.js';
import { findEndpoint, insertEndpoint } from '../db/endpoints.js';
import { listOwnerMessages, recentOwnerAttempts } from '../db/ownerActivity.js';
import type { AddressGuard } from '../delivery/addressGuard.js';
import { checkEndpointUrl } from '../delivery/endpointUrl.js';
import { HookfleetError } from '../errors.js';
import { formBodyLimit } from './formBodyLimit.js';
import type { DeliveryJobData } from '../jobs.js';
import { endpointUrlSchema, eventTypePatternSchema, safeText } from '../delivery/endpointInput.js';
import { endpointIdSchema } from '../ids.js';
import { verifyPortalToken } from '../portalTokens.js';
import { requireRedis } from '../unavailable.js';
import type { Producer } from '../producer/producer.js';
import { changeEndpoint } from '../producer/changeEndpoint.js';
import { replayFailedDeliveries } from '../producer/replayFailed.js';
import { parseInput } from '../producer/sendInput.js';
import type { Flash } from './endpointsPageLayout.js';
import { deliverySettingsFromForm, deliverySettingsShape } from './portalSettingsForm.js';
import { portalEndpoint, portalHome, portalSignedOut, type PortalFrame } from './portalView.js';
import { refuseCrossSite } from './refuseCrossSite.js';

export interface PortalPageDeps {
  config: Config;
  dbClient: DbClient;
  producer: Pick<Producer, 'deliveries' | 'setEndpointActive'>;
  guard: AddressGuard;
  redisReady: () => boolean;
  /** Where the portal is mounted, e.g. '/portal'. */
  base: string;
}

const COOKIE = 'hookfleet_portal';

/** The endpoint form: the JSON API's rules for the same fields (endpointInput.ts). */
const endpointForm = z.strictObject({
  url: endpointUrlSchema,
  eventTypes: z.array(eventTypePatternSchema).max(100),
  description: safeText(1000),
});
/** The edit form adds the delivery settings, by the same rules as PATCH /v1/endpoints/:id. */
const endpointEditForm = endpointForm.extend(deliverySettingsShape);
const DAY_MS = 86_400_000;
const REPLAY_DAYS = 7;
/** A custom header may hold up to 8 KiB (endpointHeaders.ts), beside the form's other fields. */
const FORM_LIMIT_BYTES = 16_384;
const DONE: Record<string, string> = {
  saved: 'Saved.',
  enabled: 'Enabled.',
  disabled: 'Disabled: no delivery goes to it until it is enabled again.',
  replayed: `Failed deliveries of the last ${REPLAY_DAYS} days are being sent again.`,
};

/** The token exchange: runs on every portal page, acts only when the fragment holds a token. */
function exchangeScript(base: string): string {
  return (
    `(function(){var t=location.hash.slice(1);` +
    `if(!/^ps_[0-9a-z]+\\.[A-Za-z0-9_-]{43}$/.test(t))return;` +
    `history.replaceState(null,'',location.pathname);` +
    `fetch(${JSON.stringify(`${base}/session`)},{method:'POST',credentials:'same-origin',` +
    `headers:{'content-type':'application/json'},body:JSON.stringify({token:t})})` +
    `.then(function(r){location.replace(${JSON.stringify(base)}+(r.ok?'':'?link=invalid'))});})();`
  );
}

export function createPortalPage(deps: PortalPageDeps): Hono {
  const { config, base } = deps;
  const { db } = deps.dbClient;
  const script = exchangeScript(base);
  const frame: PortalFrame = { base, script };
  const scriptHash = createHash('sha256').update(script).digest('base64');
  const ancestors =
    config.portalFrameAncestors.length === 0 ? "'none'" : config.portalFrameAncestors.join(' ');
  const csp =
    `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'; ` +
    `connect-src 'self'; form-action 'self'; frame-ancestors ${ancestors}; base-uri 'none'`;
  const app = new Hono();

  app.use(
    '*',
    refuseCrossSite({ requireOrigin: true }),
    formBodyLimit(FORM_LIMIT_BYTES),
    async (c, next) => {
      await next();
      c.res.headers.set('content-security-policy', csp);
      if (config.portalFrameAncestors.length === 0) c.res.headers.set('x-frame-options', 'DENY');
      // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the forms' POSTs.
      c.res.headers.set('referrer-policy', 'same-origin');
      c.res.headers.set('cache-control', 'no-store');
    },
  );

  app.post('/session', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { token?: unknown };
    const token = typeof body.token === 'string' ? body.token : '';
    const verdict = await verifyPortalToken(db, token);
    if (!verdict.ok) return c.json({ code: 'unauthorized', detail: verdict.detail }, 401);
    const https = new URL(c.req.url).protocol === 'https:';
    const maxAge = Math.max(0, Math.floor((verdict.expiresAt.getTime() - Date.now()) / 1000));
    const attributes = https ? 'SameSite=None; Secure; Partitioned' : 'SameSite=Strict';
    c.header(
      'set-cookie',
      `${COOKIE}=${token}; Path=${base}; Max-Age=${maxAge}; HttpOnly; ${attributes}`,
    );
    return c.body(null, 204);
  });

  /** The owner of the request's session cookie, or the page saying why there is none. */
  async function ownerOf(c: Context): Promise<string | Response> {
    const token = getCookie(c, COOKIE);
    if (token === undefined) {
      const detail =
        c.req.query('link') === 'invalid'
          ? 'This link has expired or was revoked.'
          : 'Open this page from the link your account gives you.';
      return c.html(portalSignedOut(frame, detail), 401);
    }
    const verdict = await verifyPortalToken(db, token);
    if (!verdict.ok) {
      return c.html(portalSignedOut(frame, 'Your session has ended.'), 401);
    }
    return verdict.ownerId;
  }

  /** One of the owner's endpoints by the path's id; another owner's is as missing as none. */
  async function endpointOf(c: Context, ownerId: string) {
    const id = c.req.param('id') ?? '';
    const row = endpointIdSchema.safeParse(id).success ? await findEndpoint(db, id) : undefined;
    return row?.ownerId === ownerId ? row : undefined;
  }

  const notFound = (c: Context, ownerId: string) =>
    home(c, ownerId, { kind: 'error', text: 'No such endpoint.' }, 404);

  async function home(
    c: Context,
    ownerId: string,
    flash?: Flash,
    status: 200 | 404 | 422 = 200,
    created?: { id: string; secret: string },
  ) {
    const now = new Date();
    const [endpoints, messages, attempts] = await Promise.all([
      listEndpointHealth(db, {
        since: new Date(now.getTime() - DAY_MS),
        defaultStaleAfterDays: config.staleAfterDays,
        ownerId,
        limit: 200,
      }),
      listOwnerMessages(db, ownerId, 20),
      recentOwnerAttempts(db, ownerId, 50),
    ]);
    const model = { ownerId, now, endpoints, messages, attempts, flash, created };
    return c.html(
      portalHome(frame, {
        ...model,
        staleWarningDays: config.staleWarningDays,
        failingDisableAfterHours: config.failingDisableAfterHours,
      }),
      status,
    );
  }

  app.get('/', async (c) => {
    const owner = await ownerOf(c);
    return typeof owner === 'string' ? home(c, owner) : owner;
  });

  app.post('/endpoints', async (c) => {
    const owner = await ownerOf(c);
    if (typeof owner !== 'string') return owner;
    try {
      const input = parseInput(endpointForm, await endpointFields(c));
      await checkEndpointUrl(deps.guard, input.url);
      const row = await insertEndpoint(db, { ...input, ownerId: owner });
      return await home(c, owner, undefined, 200, { id: row.id, secret: row.secret });
    } catch (error) {
      if (!(error instanceof HookfleetError)) throw error;
      return home(c, owner, { kind: 'error', text: error.message }, 422);
    }
  });

  app.get('/endpoints/:id', async (c) => {
    const owner = await ownerOf(c);
    if (typeof owner !== 'string') return owner;
    const endpoint = await endpointOf(c, owner);
    if (!endpoint) return notFound(c, owner);
    return endpointPage(c, owner, endpoint.id, flashOf(c.req.query('done')));
  });

  async function endpointPage(
    c: Context,
    ownerId: string,
    id: string,
    flash?: Flash,
    status: 200 | 422 = 200,
  ) {
    const now = new Date();
    const health = await findEndpointHealth(db, id, {
      since: new Date(now.getTime() - DAY_MS),
      defaultStaleAfterDays: config.staleAfterDays,
    });
    if (!health) return notFound(c, ownerId);
    const attempts = await recentAttempts(db, id, 50);
    const defaultRetryScheduleMs = config.retryScheduleMs;
    return c.html(
      portalEndpoint(frame, { ownerId, now, health, attempts, defaultRetryScheduleMs, flash }),
      status,
    );
  }

  app.post('/endpoints/:id', async (c) => {
    const owner = await ownerOf(c);
    if (typeof owner !== 'string') return owner;
    const endpoint = await endpointOf(c, owner);
    if (!endpoint) return notFound(c, owner);
    try {
      const form = await c.req.parseBody({ all: true });
      const { retrySchedule, ...input } = parseInput(endpointEditForm, {
        ...(await endpointFields(c, form)),
        ...deliverySettingsFromForm(form, endpoint.headers),
      });
      await changeEndpoint(
        { db, guard: deps.guard, messageRetentionDays: config.messageRetentionDays },
        endpoint,
        { ...input, retryScheduleMs: retrySchedule },
      );
    } catch (error) {
      if (!(error instanceof HookfleetError)) throw error;
      return endpointPage(c, owner, endpoint.id, { kind: 'error', text: error.message }, 422);
    }
    return c.redirect(`${base}/endpoints/${endpoint.id}?done=saved`, 303);
  });

  for (const action of ['enable', 'disable'] as const) {
    app.post(`/endpoints/:id/${action}`, async (c) => {
      const owner = await ownerOf(c);
      if (typeof owner !== 'string') return owner;
      const endpoint = await endpointOf(c, owner);
      if (!endpoint) return notFound(c, owner);
      if (endpoint.active !== (action === 'enable'))
        await deps.producer.setEndpointActive(endpoint.id, action === 'enable');
      return c.redirect(`${base}/endpoints/${endpoint.id}?done=${action}d`, 303);
    });
  }

  app.post('/endpoints/:id/replay', async (c) => {
    const owner = await ownerOf(c);
    if (typeof owner !== 'string') return owner;
    const endpoint = await endpointOf(c, owner);
    if (!endpoint) return notFound(c, owner);
    requireRedis(deps.redisReady);
    await replayFailedDeliveries(
      { db, queue: deps.producer.deliveries as ShardedQueue<DeliveryJobData> },
      { endpointId: endpoint.id, since: new Date(Date.now() - REPLAY_DAYS * DAY_MS) },
    );
    return c.redirect(`${base}/endpoints/${endpoint.id}?done=replayed`, 303);
  });

  return app;
}

function flashOf(done: string | undefined): Flash | undefined {
  const text = done === undefined ? undefined : DONE[done];
  return text === undefined ? undefined : { kind: 'ok', text };
}

/** The endpoint form's fields as the JSON API would take them (event types comma-separated). */
async function endpointFields(
  c: Context,
  body?: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const form = body ?? (await c.req.parseBody());
  const text = (name: string) => {
    const value = form[name];
    return typeof value === 'string' ? value.trim() : undefined;
  };
  const eventTypes = text('eventTypes');
  return {
    url: text('url') ?? '',
    description: text('description') ?? '',
    eventTypes:
      eventTypes === undefined
        ? []
        : eventTypes
            .split(',')
            .map((type) => type.trim())
            .filter((type) => type !== ''),
  };
}
