/**
 * The flags of `hookfleet endpoints add` and `update` that set an endpoint's settings, each
 * checked by the rule the API applies to the same field (delivery/endpointInput.ts,
 * endpointHeaders.ts, retrySchedule.ts), with a one-line error naming the flag. `update` also
 * takes `none` / `default` to clear a setting and `--remove-header` to drop a header.
 */
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { HookfleetError } from '../errors.js';
import {
  endpointUrlSchema,
  eventTypePatternSchema,
  failingDisableAfterHoursSchema,
  rateLimitPerSecondSchema,
  safeText,
  staleAfterDaysSchema,
} from '../delivery/endpointInput.js';
import { endpointHeadersSchema } from '../delivery/endpointHeaders.js';
import { PAYLOAD_FORMATS, type PayloadFormat } from '../delivery/envelope.js';
import { retryScheduleProblem, retryScheduleSchema } from '../delivery/retrySchedule.js';
import type { EndpointChange } from '../producer/changeEndpoint.js';
import { badArguments } from './args.js';

/** The parseArgs options of the settings flags (add's, and update's extra ones). */
export const ENDPOINT_SETTING_FLAGS = {
  'event-type': { type: 'string', multiple: true },
  description: { type: 'string' },
  'stale-after-days': { type: 'string' },
  'rate-limit': { type: 'string' },
  'failing-disable-after-hours': { type: 'string' },
  'payload-format': { type: 'string' },
  header: { type: 'string', multiple: true },
  'retry-schedule': { type: 'string' },
} as const;

export const UPDATE_ONLY_FLAGS = {
  url: { type: 'string' },
  'remove-header': { type: 'string', multiple: true },
} as const;

export interface SettingFlags {
  url?: string | undefined;
  'event-type'?: string[] | undefined;
  description?: string | undefined;
  'stale-after-days'?: string | undefined;
  'rate-limit'?: string | undefined;
  'failing-disable-after-hours'?: string | undefined;
  'payload-format'?: string | undefined;
  header?: string[] | undefined;
  'remove-header'?: string[] | undefined;
  'retry-schedule'?: string | undefined;
}

/** The word that clears each clearable setting on `update`, and what it means. */
export const CLEAR_WORDS = {
  'rate-limit': 'none',
  'stale-after-days': 'default',
  'failing-disable-after-hours': 'default',
  'retry-schedule': 'default',
} as const;

type Mode = 'add' | 'update';

/**
 * The settings the flags give, as changeEndpoint (and, with no null and no header removal,
 * insertEndpoint) takes them; a field is undefined when its flag is absent.
 */
export function endpointSettingsFromFlags(
  command: string,
  flags: SettingFlags,
  config: Config,
  mode: Mode,
): EndpointChange & { headers?: Record<string, string | null> } {
  const fail = (message: string) => badArguments(command, message);
  const settings = {
    url: flags.url === undefined ? undefined : checked(fail, '--url', endpointUrlSchema, flags.url),
    eventTypes: flags['event-type']?.map((type) =>
      checked(fail, '--event-type', eventTypePatternSchema, type),
    ),
    description:
      flags.description === undefined
        ? undefined
        : checked(fail, '--description', safeText(1000), flags.description),
    staleAfterDays: wholeNumberFlag(fail, mode, 'stale-after-days', staleAfterDaysSchema, flags),
    rateLimitPerSecond: wholeNumberFlag(fail, mode, 'rate-limit', rateLimitPerSecondSchema, flags),
    failingDisableAfterHours: wholeNumberFlag(
      fail,
      mode,
      'failing-disable-after-hours',
      failingDisableAfterHoursSchema,
      flags,
    ),
    payloadFormat: payloadFormatFlag(fail, flags['payload-format']),
    headers: headerFlags(fail, flags.header ?? [], flags['remove-header'] ?? []),
    retryScheduleMs: retryScheduleFlag(fail, mode, flags['retry-schedule'], config),
  };
  if (mode === 'update' && Object.values(settings).every((value) => value === undefined)) {
    throw fail('expected at least one setting to change, such as --url, --header or --rate-limit');
  }
  return settings;
}

type Fail = (message: string) => HookfleetError;

/** `value` parsed by `schema`, or a usage error naming `flag` and the rule it broke. */
function checked<T>(fail: Fail, flag: string, schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw fail(`${flag}: ${parsed.error.issues[0]!.message} (got '${String(value)}')`);
}

function wholeNumberFlag(
  fail: Fail,
  mode: Mode,
  flag: keyof typeof CLEAR_WORDS,
  schema: z.ZodType<number>,
  flags: SettingFlags,
): number | null | undefined {
  const text = flags[flag];
  if (text === undefined) return undefined;
  const clear = CLEAR_WORDS[flag];
  if (mode === 'update' && text === clear) return null;
  const parsed = schema.safeParse(/^\d{1,9}$/.test(text) ? Number(text) : NaN);
  if (parsed.success) return parsed.data;
  const rule = parsed.error.issues[0]!.message.replace(/^expected /, '');
  const or = mode === 'update' ? ` or '${clear}'` : '';
  throw fail(`--${flag} takes ${rule}${or} (got '${text}')`);
}

function payloadFormatFlag(fail: Fail, value: string | undefined): PayloadFormat | undefined {
  if (value === undefined) return undefined;
  if (!(PAYLOAD_FORMATS as readonly string[]).includes(value)) {
    throw fail(`--payload-format takes ${PAYLOAD_FORMATS.join(' or ')} (got '${value}')`);
  }
  return value as PayloadFormat;
}

/**
 * `--header 'Name: value'` sets, `--remove-header Name` removes; each header named is checked
 * by the API's rules (the whole set after the change is checked again when it is applied).
 */
function headerFlags(
  fail: Fail,
  values: readonly string[],
  removed: readonly string[],
): Record<string, string | null> | undefined {
  if (values.length === 0 && removed.length === 0) return undefined;
  const headers: Record<string, string> = {};
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw fail(`--header takes 'Name: value' (got '${value}')`);
    headers[value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
  }
  const parsed = endpointHeadersSchema.safeParse(headers);
  if (!parsed.success) throw fail(headerProblem(parsed.error.issues[0]!, '--header'));
  const set = new Set(Object.keys(headers).map((name) => name.toLowerCase()));
  for (const name of removed) {
    if (set.has(name.toLowerCase())) {
      throw fail(`--remove-header '${name}' is also set by --header; give one or the other`);
    }
  }
  return { ...parsed.data, ...Object.fromEntries(removed.map((name) => [name, null])) };
}

/** A header rule broken, as one line naming the flag and the header. */
export function headerProblem(issue: { path: PropertyKey[]; message: string }, flag: string) {
  const name = issue.path.length > 0 ? `'${String(issue.path[0])}': ` : '';
  return `${flag} ${name}${issue.message}`;
}

/** `--retry-schedule 5s,5m,2h`, checked as the API checks it, retention included. */
function retryScheduleFlag(
  fail: Fail,
  mode: Mode,
  value: string | undefined,
  config: Config,
): number[] | null | undefined {
  if (value === undefined) return undefined;
  if (mode === 'update' && value === CLEAR_WORDS['retry-schedule']) return null;
  const parsed = retryScheduleSchema.safeParse(value.split(',').map((step) => step.trim()));
  if (!parsed.success) throw fail(`--retry-schedule: ${parsed.error.issues[0]!.message}`);
  const problem = retryScheduleProblem(parsed.data, config.messageRetentionDays);
  if (problem !== undefined) throw fail(`--retry-schedule: ${problem}`);
  return parsed.data;
}
