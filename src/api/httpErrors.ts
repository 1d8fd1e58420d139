/**
 * How the API answers when something goes wrong: always `{code, detail}` (plus `fields` for
 * validation errors), never a stack trace. Known errors keep their status; anything else is a
 * bare 500 whose id is logged with the error, so an operator can find it from a client's report.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HookfleetError } from '../errors.js';
import type { Logger } from '../logger.js';

export interface ErrorBody {
  code: string;
  detail: string;
  fields?: { path: string; message: string }[];
}

/**
 * An API answer other than success, for the statuses HookfleetError does not cover (415, 503
 * with Retry-After). Thrown by handlers; the app's error handler turns it into the response.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly fields?: readonly { path: string; message: string }[],
  ) {
    super(message);
  }
}

/** Seconds a client should wait before retrying while Redis or PostgreSQL is unreachable. */
export const RETRY_AFTER_SECONDS = 5;

/** Error codes of the database and Redis clients that mean "not reachable right now". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

/** True for errors that say Redis or PostgreSQL is unreachable, rather than that a request was wrong. */
export function isUnavailableError(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code !== undefined && UNAVAILABLE_CODES.has(code)) return true;
    // ioredis: a command given up on while disconnected, refused while offline, sent on a closed
    // connection, or unanswered within commandTimeout.
    if (
      current.name === 'MaxRetriesPerRequestError' ||
      current.message === 'Connection is closed.' ||
      current.message.includes('enableOfflineQueue') ||
      current.message === 'Command timed out'
    ) {
      return true;
    }
    current = current.cause;
  }
  return false;
}

const RETRY_AFTER = { 'retry-after': String(RETRY_AFTER_SECONDS) };

export function unavailable(what: string, code = 'unavailable'): ApiError {
  return new ApiError(503, code, `${what} is unreachable; retry later`, RETRY_AFTER);
}

/**
 * Answers 503 at once while the Redis connection is down, instead of letting the request wait
 * for a reconnect (and leave a message row whose jobs never reached the queue).
 */
export function requireRedis(ready: () => boolean): void {
  // Same code as the Producer's own check (redis_unavailable), so clients see one code for it.
  if (!ready()) throw unavailable('Redis', 'redis_unavailable');
}

/** Turns any thrown value into the response; unknown errors are logged with an id and answered 500. */
export function errorResponse(c: Context, error: unknown, logger: Logger): Response {
  if (error instanceof HookfleetError) {
    // A 503 (e.g. the Producer's redis_unavailable) always says when to come back.
    const headers = error.status === 503 ? RETRY_AFTER : {};
    return c.json(body(error.code, error.message, error.fields), error.status, headers);
  }
  if (error instanceof ApiError) {
    return c.json(body(error.code, error.message, error.fields), error.status, error.headers);
  }
  if (isUnavailableError(error)) {
    const answer = unavailable('a backing store (Redis or PostgreSQL)');
    logger.warn(
      { err: error, method: c.req.method, path: c.req.path },
      'request failed: backing store unreachable',
    );
    return c.json(body(answer.code, answer.message), answer.status, answer.headers);
  }
  const id = randomBytes(6).toString('hex');
  logger.error(
    { err: error, errorId: id, method: c.req.method, path: c.req.path },
    'internal error',
  );
  return c.json({ code: 'internal', detail: `internal error (id ${id})` }, 500);
}

function body(
  code: string,
  detail: string,
  fields?: readonly { path: string; message: string }[],
): ErrorBody {
  return fields === undefined ? { code, detail } : { code, detail, fields: [...fields] };
}
