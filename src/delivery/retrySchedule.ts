/** Longest a receiver's Retry-After may push an attempt back: beyond a day it is more likely a mistake. */
export const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/**
 * Delay before retry number `retry` (1 = the first retry), or undefined when the schedule has run
 * out. Each step is jittered by ±20% so deliveries that failed together (one receiver's outage)
 * do not come back together. A receiver's Retry-After (429/503) is honoured when it asks for more.
 */
export function retryDelayMs(
  scheduleMs: readonly number[],
  retry: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number | undefined {
  const base = scheduleMs[retry - 1];
  if (base === undefined) return undefined;
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  return retryAfterMs === undefined
    ? jittered
    : Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

/** Parses Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent or malformed. */
export function parseRetryAfterMs(
  value: string | string[] | undefined,
  nowMs = Date.now(),
): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const dateMs = Date.parse(text);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}
