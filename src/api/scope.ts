/**
 * Who a /v1 request acts for, set by the authentication middleware (portalAuth.ts):
 *
 *   platform   an API key (HOOKFLEET_API_KEYS): every owner's endpoints and messages
 *   owner      a portal session token: one owner's endpoints and messages, nothing else
 *
 * Routes ask `ownerScope(c)` and treat another owner's endpoint or message exactly like a
 * missing one (the same 404), so a portal token cannot even learn what exists elsewhere.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { HookfleetError } from '../errors.js';

export type Scope = { kind: 'platform' } | { kind: 'owner'; ownerId: string; sessionId: string };

declare module 'hono' {
  interface ContextVariableMap {
    scope: Scope;
  }
}

/** The owner a portal session is limited to; undefined for the platform's API keys. */
export function ownerScope(c: Context): string | undefined {
  const scope = c.get('scope') as Scope | undefined;
  return scope?.kind === 'owner' ? scope.ownerId : undefined;
}

/** True when the request may see a row of `ownerId` (null: no owner). */
export function canSee(c: Context, ownerId: string | null): boolean {
  const owner = ownerScope(c);
  return owner === undefined || owner === ownerId;
}

/** Refuses the request unless it is made with an API key: for what a portal session may not do. */
export function requirePlatform(c: Context, what: string): void {
  if (ownerScope(c) !== undefined) {
    throw new HookfleetError(
      'forbidden',
      `a portal session token cannot ${what}; use an API key (HOOKFLEET_API_KEYS)`,
      403,
    );
  }
}

/** requirePlatform for every route of a sub-app. */
export function platformOnly(what: string): MiddlewareHandler {
  return async (c, next) => {
    requirePlatform(c, what);
    await next();
  };
}
