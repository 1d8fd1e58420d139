/** The error a caller gets when Redis cannot take a message's job. */
import { HookfleetError } from '../errors.js';

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
