/**
 * `hookfleet endpoints update`: applies the settings its flags give (endpointFlags.ts) through
 * changeEndpoint, the code the API's PATCH and the customer portal run, and words its refusals
 * as one line naming the flag rather than the API's field.
 */
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { EndpointRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import { createAddressGuard } from '../delivery/addressGuard.js';
import { changeEndpoint, type EndpointChange } from '../producer/changeEndpoint.js';
import { badArguments } from './args.js';
import { headerProblem } from './endpointFlags.js';

const COMMAND = 'endpoints update';

/** The API's names of the settings, as the flags that set them. */
const FLAG_OF: Record<string, string> = {
  url: '--url',
  eventTypes: '--event-type',
  description: '--description',
  staleAfterDays: '--stale-after-days',
  rateLimitPerSecond: '--rate-limit',
  failingDisableAfterHours: '--failing-disable-after-hours',
  payloadFormat: '--payload-format',
  headers: '--header',
  retryScheduleMs: '--retry-schedule',
};

/** The row after the change (undefined: deleted meanwhile), and the flags that changed it. */
export async function updateEndpointFromFlags(
  db: Database,
  config: Config,
  existing: EndpointRow,
  change: EndpointChange,
): Promise<{ row: EndpointRow | undefined; changed: string[] }> {
  const current = new Set(Object.keys(existing.headers).map((name) => name.toLowerCase()));
  for (const [name, value] of Object.entries(change.headers ?? {})) {
    if (value === null && !current.has(name.toLowerCase())) {
      const names = Object.keys(existing.headers).sort().join(', ') || 'none';
      throw badArguments(
        COMMAND,
        `--remove-header '${name}': ${existing.id} has no such header (it has: ${names})`,
      );
    }
  }
  try {
    const { row } = await changeEndpoint(
      {
        db,
        guard: createAddressGuard({ allowCidrs: config.allowCidrs }),
        messageRetentionDays: config.messageRetentionDays,
      },
      existing,
      change,
    );
    const changed = Object.keys(change).filter(
      (key) => change[key as keyof EndpointChange] !== undefined,
    );
    return { row, changed: changed.map((key) => FLAG_OF[key] ?? key) };
  } catch (error) {
    throw asFlagError(error);
  }
}

/** A 422 of changeEndpoint, whose fields are API names, as a usage error naming the flag. */
function asFlagError(error: unknown): unknown {
  if (!(error instanceof HookfleetError) || error.code !== 'validation_failed') return error;
  const field = error.fields?.[0];
  if (field === undefined) return error;
  const [name, ...rest] = field.path.split('.');
  if (name === 'headers') {
    const path = rest.length === 0 ? [] : [rest.join('.')];
    return badArguments(COMMAND, headerProblem({ path, message: field.message }, '--header'));
  }
  const flag = name === 'retrySchedule' ? '--retry-schedule' : (FLAG_OF[name ?? ''] ?? name);
  return badArguments(COMMAND, `${flag}: ${field.message}`);
}
