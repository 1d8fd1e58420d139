/**
 * The failing sweep: disables active endpoints whose attempts have failed with no success for
 * longer than their threshold (`failing_disable_after_hours`, else
 * HOOKFLEET_FAILING_DISABLE_AFTER_HOURS, default 120 as Svix), with reason `failing`, after
 * warning each once at half of it (`endpoint.failing_warning`). Run hourly by the maintenance
 * queue (a daily run would let an endpoint fail up to a day past its threshold), within every
 * stale sweep, and by `hookfleet sweep`.
 *
 * Deliveries still queued for a disabled endpoint fail at their next attempt and land in the
 * failed set (worker/deliveryAttempt.ts), replayable once it is enabled again.
 */
import type { DbClient } from '../db/client.js';
import {
  countFailing,
  sweepFailingBatch,
  type FailingAction,
  type FailingEndpoint,
  type FailingRule,
} from '../db/failingEndpoints.js';
import type { OperatorEvent, OperatorEvents } from '../delivery/operatorEvents.js';
import type { Metrics } from '../metrics.js';

export interface FailingSweepDeps {
  config: { failingDisableAfterHours: number };
  dbClient: DbClient;
  events: OperatorEvents;
  metrics?: Metrics | undefined;
}

export interface FailingSweepOptions {
  now: Date;
  batchSize: number;
  dryRun?: boolean | undefined;
  /** Wraps each statement (the stale sweep times them and stops between them when aborted). */
  timed?: <T>(statement: () => Promise<T>) => Promise<T>;
}

export interface FailingSweepResult {
  /** Endpoints disabled with reason `failing` (in a dry run: that would be). */
  disabled: number;
  /** Endpoints reported as `endpoint.failing_warning` (in a dry run: that would be). */
  warned: number;
  /** Batches whose events could not be stored or enqueued. */
  eventsFailed: number;
}

const HOUR_MS = 3_600_000;

export async function sweepFailingEndpoints(
  deps: FailingSweepDeps,
  options: FailingSweepOptions,
): Promise<FailingSweepResult> {
  const sql = deps.dbClient.sql;
  const timed = options.timed ?? (<T>(statement: () => Promise<T>) => statement());
  const rule: FailingRule = {
    now: options.now,
    defaultHours: deps.config.failingDisableAfterHours,
  };
  const result: FailingSweepResult = { disabled: 0, warned: 0, eventsFailed: 0 };
  if (options.dryRun) {
    result.disabled = await timed(() => countFailing(sql, rule, 'disable'));
    result.warned = await timed(() => countFailing(sql, rule, 'warn'));
    return result;
  }
  // Disabling first: an endpoint past its whole threshold is disabled, not warned a moment before.
  for (const action of ['disable', 'warn'] as const satisfies FailingAction[]) {
    for (;;) {
      const batch = await timed(() => sweepFailingBatch(sql, rule, action, options.batchSize));
      if (batch.length > 0) {
        if (action === 'disable') {
          result.disabled += batch.length;
          deps.metrics?.endpointsDeactivated.inc({ reason: 'failing' }, batch.length);
        } else {
          result.warned += batch.length;
        }
        const published = await deps.events.publish(batch.map((e) => failingEvent(action, e)));
        if (!published) result.eventsFailed += 1;
      }
      if (batch.length < options.batchSize) break;
    }
  }
  return result;
}

function failingEvent(action: FailingAction, endpoint: FailingEndpoint): OperatorEvent {
  const data = {
    endpointId: endpoint.id,
    ownerId: endpoint.ownerId,
    url: endpoint.url,
    failingSince: endpoint.failingSince.toISOString(),
    lastSuccessAt: endpoint.lastSuccessAt?.toISOString() ?? null,
    failingDisableAfterHours: endpoint.failingDisableAfterHours,
  };
  if (action === 'disable')
    return { type: 'endpoint.disabled', data: { ...data, reason: 'failing' } };
  const disablesAt = new Date(
    endpoint.failingSince.getTime() + endpoint.failingDisableAfterHours * HOUR_MS,
  );
  return {
    type: 'endpoint.failing_warning',
    data: { ...data, disablesAt: disablesAt.toISOString() },
  };
}
