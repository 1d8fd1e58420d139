/**
 * Resolves or rejects as `promise` does, or rejects with `message` once `timeoutMs` has passed.
 * The promise itself is not cancelled: a late rejection is swallowed, since nobody waits for it.
 * Used where a client library can wait without bound (a postgres.js query on a connection that
 * died silently, a Redis command during a reconnect).
 */
export async function withDeadline<T>(
  promise: Promise<T>,
  timeoutMs: number,
  message: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  promise.catch(() => {});
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
