/**
 * Authentication of the API server: a Bearer API key on /v1, basic auth on /admin (Bull Board).
 * Keys are compared in constant time over SHA-256 digests, so neither the key's content nor its
 * length leaks through response timing, and every configured key is compared on every request.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

/**
 * With no API key or no dashboard credentials configured, generates random ones and prints them
 * once (logger.warn), rather than running the API or the dashboard open. Returns the config to
 * use from then on; a config that has both is returned unchanged.
 */
export function ensureCredentials(config: Config, logger: Logger): Config {
  const needsKey = config.apiKeys.length === 0;
  const needsAdmin = config.adminUser === undefined || config.adminPassword === undefined;
  if (!needsKey && !needsAdmin) return config;
  const apiKeys = needsKey ? [`hfk_${randomBytes(24).toString('base64url')}`] : config.apiKeys;
  const adminUser = needsAdmin ? 'admin' : config.adminUser;
  const adminPassword = needsAdmin ? randomBytes(18).toString('base64url') : config.adminPassword;
  logger.warn(
    {
      ...(needsKey && { generatedApiKey: apiKeys[0] }),
      ...(needsAdmin && { generatedAdminUser: adminUser, generatedAdminPassword: adminPassword }),
    },
    `no ${[
      needsKey && 'HOOKFLEET_API_KEYS',
      needsAdmin && 'HOOKFLEET_ADMIN_USER/HOOKFLEET_ADMIN_PASSWORD',
    ]
      .filter(Boolean)
      .join(
        ' or ',
      )} set: generated credentials for this run (shown once; set the variables to keep them)`,
  );
  return Object.freeze({
    ...config,
    apiKeys: Object.freeze([...apiKeys]),
    adminUser,
    adminPassword,
  });
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * A test of whether a candidate equals one of `secrets`: it compares against all of them, in
 * constant time each. The secrets' digests are computed once, here, not on every request.
 */
export function secretMatcher(secrets: readonly string[]): (candidate: string) => boolean {
  const digests = secrets.map(digest);
  return (candidate) => {
    const given = digest(candidate);
    let matched = false;
    for (const expected of digests) matched = timingSafeEqual(given, expected) || matched;
    return matched;
  };
}

/** True when `candidate` equals one of `secrets` (see secretMatcher). */
export function matchesAny(candidate: string, secrets: readonly string[]): boolean {
  return secretMatcher(secrets)(candidate);
}

/** `Authorization: Bearer <key>` with one of `apiKeys`; otherwise 401 `{code: 'unauthorized'}`. */
export function requireApiKey(apiKeys: readonly string[]): MiddlewareHandler {
  const isApiKey = secretMatcher(apiKeys);
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match || apiKeys.length === 0 || !isApiKey(match[1]!)) {
      const detail = match
        ? 'the API key is not valid'
        : 'missing or malformed Authorization header; expected Bearer <key> (keys are set by HOOKFLEET_API_KEYS)';
      return c.json({ code: 'unauthorized', detail }, 401, {
        'www-authenticate': 'Bearer realm="hookfleet"',
      });
    }
    await next();
  };
}

/** HTTP basic auth with the dashboard user and password; the challenge makes browsers ask for them. */
export function requireAdmin(
  user: string | undefined,
  password: string | undefined,
): MiddlewareHandler {
  return async (c, next) => {
    const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(c.req.header('authorization') ?? '');
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const ok =
      user !== undefined &&
      password !== undefined &&
      colon >= 0 &&
      // Both halves are always compared, so a right user name does not answer faster.
      [
        matchesAny(decoded.slice(0, colon), [user]),
        matchesAny(decoded.slice(colon + 1), [password]),
      ].every(Boolean);
    if (!ok) {
      return c.json(
        { code: 'unauthorized', detail: 'the dashboard needs the admin user and password' },
        401,
        {
          'www-authenticate': 'Basic realm="hookfleet admin", charset="UTF-8"',
        },
      );
    }
    await next();
  };
}
