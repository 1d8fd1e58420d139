/**
 * A change to an endpoint's settings, made the same way wherever a user edits one: the JSON API
 * (PATCH /v1/endpoints/:id), `hookfleet endpoints update` and the customer portal's form. Each
 * parses its own input; this checks what needs the endpoint or the fleet to decide (the address
 * guard, the message retention, the headers after the change), writes the row, and changes the
 * state through the Producer, which reports it to the operator webhook.
 */
import { z } from 'zod';
import type { Database } from '../db/client.js';
import { updateEndpoint, type EndpointChanges } from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import type { AddressGuard } from '../delivery/addressGuard.js';
import { changedHeaders, endpointHeadersSchema } from '../delivery/endpointHeaders.js';
import { checkEndpointUrl } from '../delivery/endpointUrl.js';
import { retryScheduleProblem } from '../delivery/retrySchedule.js';
import type { Producer } from './producer.js';
import { parseInput } from './sendInput.js';

export interface ChangeEndpointDeps {
  db: Database;
  guard: AddressGuard;
  /** Changes the state and reports it; needed only for a change of `active`. */
  producer?: Pick<Producer, 'setEndpointActive'> | undefined;
  /** HOOKFLEET_MESSAGE_RETENTION_DAYS: a retry schedule must end before bodies are pruned. */
  messageRetentionDays: number;
}

/** What may change; undefined fields are left alone, null restores a default. */
export interface EndpointChange extends Omit<EndpointChanges, 'headers' | 'retryScheduleMs'> {
  /** A value sets that header, null removes it; headers not named are kept. */
  headers?: Readonly<Record<string, string | null>> | undefined;
  /** Delays in ms, already parsed by retryScheduleSchema; null: HOOKFLEET_RETRY_SCHEDULE. */
  retryScheduleMs?: number[] | null | undefined;
  /** true re-enables (and restarts the stale clock); false disables with reason 'manual'. */
  active?: boolean | undefined;
}

export interface EndpointChangeResult {
  /** Undefined when the endpoint was deleted meanwhile. */
  row: EndpointRow | undefined;
  /** True when this change disabled it (for the deactivation metric). */
  disabled: boolean;
}

/**
 * Applies `change` to `existing`. Refusals are 422 `validation_failed` errors whose fields name
 * `url`, `retrySchedule` or `headers.<name>`, as the API answers them.
 */
export async function changeEndpoint(
  deps: ChangeEndpointDeps,
  existing: EndpointRow,
  change: EndpointChange,
): Promise<EndpointChangeResult> {
  const { active, headers, retryScheduleMs, ...settings } = change;
  if (settings.url !== undefined) await checkEndpointUrl(deps.guard, settings.url);
  if (retryScheduleMs) checkRetrySchedule(retryScheduleMs, deps.messageRetentionDays);
  let row = await updateEndpoint(deps.db, existing.id, {
    ...settings,
    retryScheduleMs,
    // Checked whole, after the change, so the count and size caps hold for the result.
    headers:
      headers === undefined
        ? undefined
        : parseInput(z.object({ headers: endpointHeadersSchema }), {
            headers: changedHeaders(existing.headers, headers),
          }).headers,
  });
  // Only a change of state touches the row: re-enabling restarts the stale clock, and disabling
  // an endpoint the sweep already disabled keeps its reason ('stale').
  let disabled = false;
  if (row && active !== undefined && active !== row.active) {
    if (!deps.producer) throw new Error('changeEndpoint: a change of state needs a producer');
    const result = await deps.producer.setEndpointActive(existing.id, active);
    row = result.row;
    disabled = !active && result.changed;
  }
  return { row, disabled };
}

/** A schedule the message retention cannot keep bodies for is a 422 naming `retrySchedule`. */
export function checkRetrySchedule(
  scheduleMs: readonly number[],
  messageRetentionDays: number,
): void {
  const problem = retryScheduleProblem(scheduleMs, messageRetentionDays);
  if (problem === undefined) return;
  throw new HookfleetError('validation_failed', `retrySchedule: ${problem}`, 422, [
    { path: 'retrySchedule', message: problem },
  ]);
}
