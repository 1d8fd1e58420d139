import { z } from 'zod';
import { durationText, parseDurationMs } from '../duration.js';
import { FAILED_DELIVERY_RETENTION_DAYS } from '../jobs.js';

const DAY_MS = 86_400_000;

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

/** Most retries an endpoint's own schedule may have. */
export const MAX_ENDPOINT_RETRIES = 20;
/** Shortest step of an endpoint's own schedule: a receiver that just failed gets a second at least. */
export const MIN_ENDPOINT_RETRY_DELAY_MS = 1000;
/** Longest step of an endpoint's own schedule, as for Retry-After. */
export const MAX_ENDPOINT_RETRY_DELAY_MS = MAX_RETRY_AFTER_MS;

/**
 * An endpoint's own retry schedule as the API, the CLI and the pages take it: delays such as
 * "5s", "30m", "2h" (or whole milliseconds), one per retry; at most MAX_ENDPOINT_RETRIES, each from
 * 1 s to 24 h. Whether it fits the message retention is for retryScheduleProblem.
 */
export const retryScheduleSchema = z
  .array(
    z.union([z.string(), z.number()]).transform((value, ctx) => {
      const ms = typeof value === 'number' ? value : parseDurationMs(value);
      if (
        ms === undefined ||
        !Number.isSafeInteger(ms) ||
        ms < MIN_ENDPOINT_RETRY_DELAY_MS ||
        ms > MAX_ENDPOINT_RETRY_DELAY_MS
      ) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a delay from 1s to 24h such as "5s", "30m" or "2h" (got ${JSON.stringify(value)})`,
        });
        return z.NEVER;
      }
      return ms;
    }),
  )
  .min(1, 'expected at least one delay (null restores the default schedule)')
  .max(MAX_ENDPOINT_RETRIES, `at most ${MAX_ENDPOINT_RETRIES} retries`);

/**
 * Why a schedule cannot be used, or undefined: a delivery's message must outlive its last retry
 * plus the days a failed delivery stays replayable, or the retry would find its body pruned
 * (the rule HOOKFLEET_MESSAGE_RETENTION_DAYS is checked against at start-up).
 */
export function retryScheduleProblem(
  scheduleMs: readonly number[],
  messageRetentionDays: number,
): string | undefined {
  const neededMs =
    scheduleMs.reduce((sum, ms) => sum + ms, 0) + FAILED_DELIVERY_RETENTION_DAYS * DAY_MS;
  if (neededMs < messageRetentionDays * DAY_MS) return undefined;
  const spareDays = messageRetentionDays - FAILED_DELIVERY_RETENTION_DAYS;
  return (
    `the schedule lasts ${durationText(neededMs - FAILED_DELIVERY_RETENTION_DAYS * DAY_MS)}; ` +
    `messages are kept ${messageRetentionDays} days (HOOKFLEET_MESSAGE_RETENTION_DAYS), of which ` +
    `${FAILED_DELIVERY_RETENTION_DAYS} keep failed deliveries replayable, so it must be under ${spareDays} days`
  );
}
