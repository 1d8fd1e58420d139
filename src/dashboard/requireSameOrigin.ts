/**
 * Cross-site request protection for the dashboard's own forms (issue #8). Browsers send basic-auth
 * credentials on their own, so any web page an operator visits could otherwise POST to "disable"
 * or "replay" with the operator's rights. A browser states where a POST comes from in `Origin`
 * (every current browser sends it on form POSTs) or, failing that, `Referer`; a POST is accepted
 * only when the one it sends names this server. A POST that names neither is refused too: the
 * forms are for browsers, and scripts have the JSON API.
 *
 * "This server" is the host the request was sent to (its Host header), compared without the
 * scheme, because behind a TLS-terminating proxy the browser says https while this process sees
 * http. A proxy in front of the dashboard must therefore pass the Host header on unchanged.
 *
 * It complements refuseCrossSite (api/auth.ts, on all of /admin), which trusts requests that
 * carry no browser header at all so that Bull Board's API stays usable from curl.
 */
import type { MiddlewareHandler } from 'hono';

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined; // 'null' (an opaque origin) and garbage are no host
  }
}

/** Refuses (403 `{code: 'forbidden', detail}`) a non-GET request not sent from this server's pages. */
export function requireSameOrigin(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const ownHost = new URL(c.req.url).host;
    const origin = c.req.header('origin');
    const claimed = origin ?? c.req.header('referer');
    if (claimed === undefined || hostOf(claimed) !== ownHost) {
      const detail =
        claimed === undefined
          ? 'the request has neither an Origin nor a Referer header; the dashboard accepts changes only from its own pages'
          : `the request comes from ${JSON.stringify(claimed.slice(0, 200))} (${origin === undefined ? 'Referer' : 'Origin'}), not from this dashboard (${ownHost}); changes are accepted only from its own pages`;
      return c.json({ code: 'forbidden', detail }, 403);
    }
    await next();
  };
}
