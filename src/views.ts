/**
 * Database rows as the API and the command line show them: each view's shape (a zod schema,
 * which the API also registers in its OpenAPI document, api/contracts.ts) and the function that
 * builds it from rows. Here rather than in api/ so that `hookfleet messages show` and `endpoints
 * show` print what the API answers without the command line importing the API. An endpoint's
 * `secret` and `previousSecret` are never part of a view: only create and rotate-secret add the
 * new secret.
 */
import { z } from 'zod';
import { endpointAttemptStats, type AttemptSelect } from './db/attempts.js';
import type { Database } from './db/client.js';
import type { EndpointRow, MessageRow } from './db/schema.js';
import { PAYLOAD_FORMATS } from './delivery/envelope.js';
import { maskHeaders } from './delivery/endpointHeaders.js';
import { durationText } from './duration.js';

const timestamp = z.iso.datetime();

/** Any JSON value: a message payload. */
export const jsonValueSchema = z.json();

export const endpointSchema = z.strictObject({
  id: z.string(),
  url: z.string(),
  /** The customer it belongs to; null for a platform-wide endpoint. */
  ownerId: z.string().nullable(),
  description: z.string(),
  eventTypes: z.array(z.string()),
  active: z.boolean(),
  staleAfterDays: z.number().int().nullable(),
  /** Most requests per second to it, fleet-wide; null: no such limit. */
  rateLimitPerSecond: z.number().int().nullable(),
  failingDisableAfterHours: z.number().int().nullable(),
  /** 'envelope': {"type","timestamp","data"} around the payload; 'raw': the payload alone. */
  payloadFormat: z.enum(PAYLOAD_FORMATS),
  /** Custom headers sent on every attempt: names, with every value masked (they may be credentials). */
  headers: z.record(z.string(), z.string()),
  /** Delays before each retry ("5s", "2h"); null: HOOKFLEET_RETRY_SCHEDULE. */
  retrySchedule: z.array(z.string()).nullable(),
  createdAt: timestamp,
  reactivatedAt: timestamp.nullable(),
  lastSuccessAt: timestamp.nullable(),
  lastFailureAt: timestamp.nullable(),
  consecutiveFailures: z.number().int(),
  /** Since when its attempts have failed with no success; null while it is not failing. */
  failingSince: timestamp.nullable(),
  successCount: z.number().int(),
  failureCount: z.number().int(),
  deactivatedAt: timestamp.nullable(),
  deactivationReason: z.string().nullable(),
});

export const endpointHealthSchema = endpointSchema.extend({
  /** Attempt statistics over the last 24 hours. */
  stats24h: z.strictObject({
    since: timestamp,
    attempts: z.number().int(),
    succeeded: z.number().int(),
    failed: z.number().int(),
    successRate: z.number().nullable(),
    meanLatencyMs: z.number().nullable(),
    p95LatencyMs: z.number().nullable(),
  }),
  /**
   * The endpoint's circuit as the workers keep it (see the README's "Sick receivers"); null when
   * the breaker is off or its state could not be read. Absent from `hookfleet endpoints show`.
   */
  circuit: z
    .strictObject({
      state: z.enum(['closed', 'open', 'half-open']),
      /** While open: when the next probe may go out. */
      retryAt: timestamp.nullable(),
    })
    .nullable()
    .optional(),
});

export const attemptSchema = z.strictObject({
  attemptNumber: z.number().int(),
  attemptedAt: timestamp,
  outcome: z.enum(['succeeded', 'retrying', 'failed']),
  statusCode: z.number().int().nullable(),
  durationMs: z.number().int(),
  error: z.string().nullable(),
});

/**
 * `queued`: no attempt yet and none being made; `in_flight`: an attempt is being sent now (shown
 * once it has been sending for 100 ms); `retrying`: the last attempt failed and another is
 * scheduled; `succeeded`, `failed`: final.
 */
export const deliveryStatusSchema = z.enum([
  'queued',
  'in_flight',
  'retrying',
  'succeeded',
  'failed',
]);

export const messageSchema = z.strictObject({
  id: z.string(),
  eventType: z.string(),
  /** The owner whose endpoints it went to; null: endpoints without an owner. */
  ownerId: z.string().nullable(),
  payload: jsonValueSchema,
  idempotencyKey: z.string().nullable(),
  endpointIds: z.array(z.string()),
  createdAt: timestamp,
  enqueuedAt: timestamp.nullable(),
  deliveries: z.array(
    z.strictObject({
      endpointId: z.string(),
      status: deliveryStatusSchema,
      attempts: z.array(attemptSchema),
    }),
  ),
});

export type EndpointView = z.input<typeof endpointSchema>;
export type EndpointHealthView = z.input<typeof endpointHealthSchema>;
export type MessageView = z.input<typeof messageSchema>;

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
    rateLimitPerSecond: row.rateLimitPerSecond,
    failingDisableAfterHours: row.failingDisableAfterHours,
    payloadFormat: row.payloadFormat,
    headers: maskHeaders(row.headers),
    retrySchedule: row.retryScheduleMs?.map(durationText) ?? null,
    createdAt: row.createdAt.toISOString(),
    reactivatedAt: iso(row.reactivatedAt),
    lastSuccessAt: iso(row.lastSuccessAt),
    lastFailureAt: iso(row.lastFailureAt),
    consecutiveFailures: row.consecutiveFailures,
    failingSince: iso(row.failingSince),
    successCount: row.successCount,
    failureCount: row.failureCount,
    deactivatedAt: iso(row.deactivatedAt),
    deactivationReason: row.deactivationReason,
  };
}

type DeliveryStatus = MessageView['deliveries'][number]['status'];

/**
 * A delivery's status from its attempts, newest last, and whether an attempt is being sent now
 * (`sending`, delivery/deliveriesSending.ts, once it has been sending for 100 ms): an attempt being
 * sent is `in_flight` (a retry or a redelivery too), none yet is `queued`; otherwise the newest
 * attempt's outcome (`retrying` while the retry schedule lasts, then `succeeded` or `failed`).
 */
export function deliveryStatus(
  attempts: readonly AttemptSelect[],
  sending = false,
): DeliveryStatus {
  if (sending) return 'in_flight';
  const newest = attempts[attempts.length - 1];
  if (newest === undefined) return 'queued';
  return newest.outcome === 'succeeded' || newest.outcome === 'failed'
    ? newest.outcome
    : 'retrying';
}

/**
 * A message with one delivery per endpoint it was fanned out to; `attempts` sorted oldest first,
 * `sending` the endpoints an attempt is being sent to now.
 */
export function toMessageView(
  message: MessageRow,
  attempts: readonly AttemptSelect[],
  sending: ReadonlySet<string> = new Set(),
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
      status: deliveryStatus(list, sending.has(endpointId)),
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

const DAY_MS = 24 * 3600 * 1000;

/**
 * An endpoint with its health, as `GET /v1/endpoints/:id` and `hookfleet endpoints show` give it:
 * the endpoint view plus attempt statistics over the 24 hours before `now`.
 */
export async function endpointHealthView(
  db: Database,
  row: EndpointRow,
  now = new Date(),
): Promise<EndpointHealthView> {
  const since = new Date(now.getTime() - DAY_MS);
  const stats = await endpointAttemptStats(db, row.id, since);
  return { ...toEndpointView(row), stats24h: { since: since.toISOString(), ...stats } };
}
