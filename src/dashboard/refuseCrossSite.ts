/**
 * Cross-site request protection for everything under /admin: Bull Board and the endpoint pages.
 * Browsers send basic-auth credentials on their own, so without it any web page an operator
 * visits could make the operator's browser empty a queue or disable an endpoint (CSRF).
 *
 * One policy, for requests that change something (any method but GET and HEAD):
 * 1. `Sec-Fetch-Site`, when the browser sends it, decides: `same-origin` and `none` (typed in
 *    the address bar) pass, anything else (`same-site`, `cross-site`) is refused.
 * 2. Without it, an `Origin` header must name this host.
 * 3. With `requireOrigin` (the endpoint pages, whose changes come only from their own forms), the
 *    request must also say where it comes from: its `Origin` or, failing that, its `Referer`
 *    must name this host, and a request with neither is refused; scripts have the JSON API.
 *    Without it (the rest of /admin), a request with no browser header at all is not a browser's
 *    and passes, so Bull Board's API stays usable from curl.
 *
 * "This host" is the host the request was sent to (the URL the server built from its Host
 * header), compared without the scheme, because behind a TLS-terminating proxy the browser says
 * https while this process sees http. A proxy in front of /admin must pass the Host header on
 * unchanged. Refusals are 403 `{code: 'forbidden', detail}`.
 */
import type { Context, MiddlewareHandler } from 'hono';

export interface CrossSiteOptions {
  /**
   * Refuse changes that do not name this host in Origin or Referer, including those that send
   * neither (step 3 above). Default false: requests without browser headers pass.
   */
  requireOrigin?: boolean;
}

/** Refuses (403) a request that changes something and comes, or may come, from another site. */
export function refuseCrossSite(options: CrossSiteOptions = {}): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const detail = whyRefused(c, options.requireOrigin ?? false);
    if (detail !== undefined) return c.json({ code: 'forbidden', detail }, 403);
    await next();
  };
}

/** The reason to refuse the request, or undefined to let it through. */
function whyRefused(c: Context, requireOrigin: boolean): string | undefined {
  const ownHost = new URL(c.req.url).host;
  const site = c.req.header('sec-fetch-site');
  const origin = c.req.header('origin');
  const crossSite =
    site !== undefined
      ? site !== 'same-origin' && site !== 'none'
      : origin !== undefined && hostOf(origin) !== ownHost;
  if (crossSite) return 'the dashboard refuses changes requested from another site';
  if (!requireOrigin) return undefined;
  const claimed = origin ?? c.req.header('referer');
  if (claimed === undefined) {
    return 'the request has neither an Origin nor a Referer header; the dashboard accepts changes only from its own pages';
  }
  if (hostOf(claimed) === ownHost) return undefined;
  return `the request comes from ${JSON.stringify(claimed.slice(0, 200))} (${origin === undefined ? 'Referer' : 'Origin'}), not from this dashboard (${ownHost}); changes are accepted only from its own pages`;
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined; // 'null' (an opaque origin) and garbage are no host
  }
}
