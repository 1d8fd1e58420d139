/**
 * Resolves or rejects as `promise` does, or rejects with `message` once `timeoutMs` has passed.
 * The promise itself is not cancelled: a late rejection is swallowed, since nobody waits for it.
 * Used where a client library can wait without bound (a postgres.js query on a connection that
 * died silently, a Redis command during a reconnect).
 */
/** What `withDeadline` rejects with when the time is up (the promise may still settle later). */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
}

export async function withDeadline<T>(
  promise: Promise<T>,
  timeoutMs: number,
  message: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(message)), timeoutMs);
  });
  promise.catch(() => {});
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
