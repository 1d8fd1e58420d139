/**
 * Database rows as the API shows them (see contracts.ts). An endpoint's `secret` and
 * `previousSecret` are never part of a view: only create and rotate-secret add the new secret.
 */
import type { AttemptSelect } from '../db/attempts.js';
import type { EndpointRow, MessageRow } from '../db/schema.js';
import type { EndpointView, MessageView } from './contracts.js';

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export function toEndpointView(row: EndpointRow): EndpointView {
  return {
    id: row.id,
    url: row.url,
    ownerId: row.ownerId,
    description: row.description,
    eventTypes: row.eventTypes,
    active: row.active,
    staleAfterDays: row.staleAfterDays,
    createdAt: row.createdAt.toISOString(),
    reactivatedAt: iso(row.reactivatedAt),
    lastSuccessAt: iso(row.lastSuccessAt),
    lastFailureAt: iso(row.lastFailureAt),
    consecutiveFailures: row.consecutiveFailures,
    successCount: row.successCount,
    failureCount: row.failureCount,
    deactivatedAt: iso(row.deactivatedAt),
    deactivationReason: row.deactivationReason,
  };
}

type DeliveryStatus = MessageView['deliveries'][number]['status'];

/**
 * A delivery's status from its attempts, newest last: none yet is `pending`; otherwise the newest
 * attempt's outcome (`retrying` while the retry schedule lasts, then `succeeded` or `failed`).
 */
export function deliveryStatus(attempts: readonly AttemptSelect[]): DeliveryStatus {
  const newest = attempts[attempts.length - 1];
  if (newest === undefined) return 'pending';
  return newest.outcome === 'succeeded' || newest.outcome === 'failed'
    ? newest.outcome
    : 'retrying';
}

/** A message with one delivery per endpoint it was fanned out to; `attempts` sorted oldest first. */
export function toMessageView(
  message: MessageRow,
  attempts: readonly AttemptSelect[],
): MessageView {
  const byEndpoint = new Map<string, AttemptSelect[]>(message.endpointIds.map((id) => [id, []]));
  for (const attempt of attempts) byEndpoint.get(attempt.endpointId)?.push(attempt);
  return {
    id: message.id,
    eventType: message.eventType,
    ownerId: message.ownerId,
    payload: message.payload as MessageView['payload'],
    idempotencyKey: message.idempotencyKey,
    endpointIds: message.endpointIds,
    createdAt: message.createdAt.toISOString(),
    enqueuedAt: iso(message.enqueuedAt),
    deliveries: [...byEndpoint].map(([endpointId, list]) => ({
      endpointId,
      status: deliveryStatus(list),
      attempts: list.map((a) => ({
        attemptNumber: a.attemptNumber,
        attemptedAt: a.attemptedAt.toISOString(),
        outcome: a.outcome as 'succeeded' | 'retrying' | 'failed',
        statusCode: a.statusCode,
        durationMs: a.durationMs,
        error: a.error,
      })),
    })),
  };
}
