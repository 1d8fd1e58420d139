/**
 * Times as operators read them on the dashboard: "3 days ago" in the text, the exact UTC time in a
 * title attribute (see endpointsPageLayout.ts `timeCell`).
 */

const UNITS: readonly [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1000],
];

/** Under this, a time is "just now" rather than a count of seconds that is stale on arrival. */
const JUST_NOW_MS = 10_000;

// numeric: 'always' keeps the number ("1 day ago", not "yesterday"), which scans better in a table.
const format = new Intl.RelativeTimeFormat('en', { numeric: 'always' });

/** `date` relative to `now`: "just now", "5 minutes ago", "3 days ago", "in 2 hours". */
export function relativeTime(date: Date, now: Date): string {
  const deltaMs = date.getTime() - now.getTime();
  if (Math.abs(deltaMs) < JUST_NOW_MS) return 'just now';
  for (const [unit, unitMs] of UNITS) {
    const count = Math.trunc(deltaMs / unitMs);
    if (count !== 0) return format.format(count, unit);
  }
  return 'just now';
}

/** The exact time, in UTC to the second: "2025-01-02 03:04:05 UTC". */
export function exactTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

const DAY_MS = 86_400_000;

/**
 * Whole days from `now` until `deadline`, rounded down (a deadline 36 h away is 1 day away);
 * negative once it has passed.
 */
export function daysUntil(deadline: Date, now: Date): number {
  return Math.floor((deadline.getTime() - now.getTime()) / DAY_MS);
}
