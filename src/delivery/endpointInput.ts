/**
 * The fields of an endpoint as every way in takes them (the JSON API's contracts, the customer
 * portal's forms): one rule each, so a URL or a subscription one accepts the other accepts too.
 */
import { z } from 'zod';

const NUL = '\u0000';
/** PostgreSQL text and jsonb cannot hold NUL; refused here rather than failing in the database. */
export const safeText = (max: number) =>
  z
    .string()
    .max(max)
    .refine((value) => !value.includes(NUL), 'must not contain NUL (\\u0000) characters');

/** What an endpoint subscribes to: an event type, a prefix wildcard such as `invoice.*`, or `*`. */
export const eventTypePatternSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^(?:\*|[A-Za-z0-9_.:-]+?(?:\.\*)?)$/,
    'expected an event type (invoice.paid), a prefix wildcard (invoice.*) or * for every type',
  );

/** Shape only; whether the address may be reached is the address guard's call (endpointUrl.ts). */
export const endpointUrlSchema = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected an absolute http:// or https:// URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({
        code: 'custom',
        message: `expected an http:// or https:// URL, got ${url.protocol}`,
      });
    } else if (url.username !== '' || url.password !== '') {
      ctx.addIssue({
        code: 'custom',
        message: 'must not contain credentials (user:password@); authenticate with the signature',
      });
    }
  });

/** A whole number from `min` to `max`, with a message that says so (zod's names the type only). */
const wholeNumber = (min: number, max: number, unit: string) => {
  const message = `expected a whole number ${unit}from ${min} to ${max}`;
  return z.number({ error: message }).int(message).min(min, message).max(max, message);
};

/** Days without a success before the stale sweep disables it. */
export const staleAfterDaysSchema = wholeNumber(1, 36_500, 'of days ');
/**
 * Most requests per second the fleet sends the endpoint, beside the adaptive in-flight limit.
 * Up to 10,000: above that a receiver is better served by no limit.
 */
export const rateLimitPerSecondSchema = wholeNumber(1, 10_000, 'of requests per second ');
/** Up to a year: past that the stale sweep disables a failing endpoint first anyway. */
export const failingDisableAfterHoursSchema = wholeNumber(1, 8_760, 'of hours ');
