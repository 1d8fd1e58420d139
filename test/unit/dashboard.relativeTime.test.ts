import { describe, expect, it } from 'vitest';
import { daysUntil, exactTime, relativeTime } from '../../src/dashboard/relativeTime.js';

const now = new Date('2025-06-15T12:00:00.000Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const MINUTE = 60_000;
const DAY = 86_400_000;

describe('relativeTime', () => {
  it.each([
    [ago(3_000), 'just now'],
    [ago(45_000), '45 seconds ago'],
    [ago(5 * MINUTE), '5 minutes ago'],
    [ago(2 * 60 * MINUTE + 59 * MINUTE), '2 hours ago'],
    [ago(DAY), '1 day ago'],
    [ago(3 * DAY + 5 * 60 * MINUTE), '3 days ago'],
    [ago(45 * DAY), '1 month ago'],
    [ago(400 * DAY), '1 year ago'],
    [new Date(now.getTime() + 2 * 60 * MINUTE), 'in 2 hours'],
  ])('says %s is "%s"', (date, text) => {
    expect(relativeTime(date, now)).toBe(text);
  });
});

describe('exactTime', () => {
  it('gives the UTC time to the second', () => {
    expect(exactTime(new Date('2025-01-02T03:04:05.678Z'))).toBe('2025-01-02 03:04:05 UTC');
  });
});

describe('daysUntil', () => {
  it('counts whole days left, rounded down, and goes negative once the deadline passed', () => {
    expect(daysUntil(new Date(now.getTime() + 36 * 60 * MINUTE), now)).toBe(1);
    expect(daysUntil(new Date(now.getTime() + 23 * 60 * MINUTE), now)).toBe(0);
    expect(daysUntil(ago(MINUTE), now)).toBe(-1);
  });
});
