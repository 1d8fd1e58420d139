import type { Logger } from './logger.js';

/**
 * An 'error' listener for connections that retry by themselves (ioredis, BullMQ): during an
 * outage they report the same error at every reconnection, two to four times a second per
 * connection, which buried everything else in a first run without Redis (about 700 lines in
 * 40 s). The first occurrence of an error is logged at once; repeats of the same message are
 * counted and logged at most once per `intervalMs`, with `repeated` saying how many were folded.
 */
export function logRepeatedErrors(
  logger: Logger,
  level: 'warn' | 'error',
  msg: string,
  intervalMs = 30_000,
  now: () => number = Date.now,
): (error: unknown) => void {
  let lastText: string | undefined;
  let lastLoggedAt = 0;
  let repeated = 0;
  return (error) => {
    const text = error instanceof Error ? error.message : String(error);
    const at = now();
    if (text === lastText && at - lastLoggedAt < intervalMs) {
      repeated += 1;
      return;
    }
    logger[level]({ err: error, ...(repeated > 0 && { repeated }) }, msg);
    lastText = text;
    lastLoggedAt = at;
    repeated = 0;
  };
}
