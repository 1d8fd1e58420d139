import { describe, expect, it } from 'vitest';
import {
  MAX_RETRY_AFTER_MS,
  parseRetryAfterMs,
  retryDelayMs,
} from '../../src/delivery/retrySchedule.js';

const schedule = [5_000, 300_000, 1_800_000];

describe('retryDelayMs', () => {
  it('follows the schedule, jittered within ±20%', () => {
    expect(retryDelayMs(schedule, 1, undefined, () => 0)).toBe(4_000);
    expect(retryDelayMs(schedule, 1, undefined, () => 1)).toBe(6_000);
    expect(retryDelayMs(schedule, 2, undefined, () => 0.5)).toBe(300_000);
  });

  it('is undefined once the schedule has run out', () => {
    expect(retryDelayMs(schedule, 4)).toBeUndefined();
  });

  it('waits at least as long as Retry-After asks, up to a day', () => {
    expect(retryDelayMs(schedule, 1, 60_000, () => 0.5)).toBe(60_000);
    expect(retryDelayMs(schedule, 2, 1_000, () => 0.5)).toBe(300_000);
    expect(retryDelayMs(schedule, 1, 10 * MAX_RETRY_AFTER_MS, () => 0.5)).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe('parseRetryAfterMs', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfterMs('120')).toBe(120_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
  });

  it('ignores absent or malformed values', () => {
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    expect(parseRetryAfterMs('soon')).toBeUndefined();
    expect(parseRetryAfterMs('')).toBeUndefined();
  });
});
