/**
 * Unavailability in the error vocabulary: telling "Redis or PostgreSQL cannot be reached right
 * now" apart from "the request was wrong", and the 503 HookfleetErrors that say so. Shared by the
 * library (the Producer's `redis_unavailable`), the API and dashboard (their 503 answers) and the
 * command line (its one-line message), so none of them imports another's code for it.
 */
import { HookfleetError } from './errors.js';

/** Seconds a client should wait before retrying while Redis or PostgreSQL is unreachable. */
export const RETRY_AFTER_SECONDS = 5;

/** The header every 503 carries, so a client knows when to come back. */
export const RETRY_AFTER_HEADERS: Readonly<Record<string, string>> = {
  'retry-after': String(RETRY_AFTER_SECONDS),
};

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

/** The 503 for a backing store that cannot be reached; it says when to retry. */
export function unavailable(what: string, code = 'unavailable'): HookfleetError {
  return new HookfleetError(
    code,
    `${what} is unreachable; retry later`,
    503,
    undefined,
    RETRY_AFTER_HEADERS,
  );
}

/**
 * Throws a 503 at once while the Redis connection is down, instead of letting a request wait for
 * a reconnect (and leave a message row whose jobs never reached the queue).
 */
export function requireRedis(ready: () => boolean): void {
  // Same code as the Producer's own check (redis_unavailable), so clients see one code for it.
  if (!ready()) throw unavailable('Redis', 'redis_unavailable');
}

/** The 503 a caller gets when Redis cannot take the deliveries; it names the message if one was stored. */
export function redisUnavailable(
  reason: string,
  messageId?: string,
  cause?: unknown,
): HookfleetError {
  const stored =
    messageId === undefined
      ? 'nothing was stored'
      : `message ${messageId} was stored but not enqueued (send again with the same idempotencyKey to resume it)`;
  const error = new HookfleetError(
    'redis_unavailable',
    `Redis is unavailable (${reason}); ${stored}. Retry later.`,
    503,
  );
  if (cause !== undefined) error.cause = cause;
  return error;
}
