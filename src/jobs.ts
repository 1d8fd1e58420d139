/**
 * Queue and job names, job payload schemas.
 *
 * Terminology
 * - endpoint: a receiver's URL with its signing secret and the event types it subscribes to.
 * - message: one event handed to hookfleet (event type + JSON payload), with a `msg_` id that
 *   receivers see as `webhook-id` and can deduplicate on.
 * - delivery: one message to one endpoint; one BullMQ job in the `deliveries` queue.
 * - attempt: one HTTP POST of a delivery. A delivery makes attempts until one succeeds (2xx),
 *   one fails permanently, or the retry schedule runs out.
 * - success recording: writing `last_success_at` and the failure counters of an endpoint,
 *   coalesced in each worker and flushed in batches.
 * - sweep: the scheduled job that deactivates endpoints with no success for too long.
 */
import { z } from 'zod';

/** One job per message x endpoint. */
export const DELIVERIES_QUEUE = 'deliveries';
/** The stale-endpoint sweep and other scheduled work. */
export const MAINTENANCE_QUEUE = 'maintenance';

export const DELIVERY_JOB = 'deliver';

/**
 * What a delivery job carries. The body is the exact JSON text that is signed and sent, kept as
 * text so every retry sends the same bytes. The endpoint's URL and secret are *not* here: the
 * worker reads them from PostgreSQL, so secrets never sit in Redis or show in Bull Board, and a
 * URL change or deactivation takes effect on queued deliveries.
 */
export const deliveryJobSchema = z.object({
  messageId: z.string(),
  endpointId: z.string(),
  eventType: z.string(),
  body: z.string(),
  /** When the producer accepted the message (ms since epoch), for end-to-end latency. */
  enqueuedAtMs: z.number(),
});
export type DeliveryJobData = z.infer<typeof deliveryJobSchema>;

/** Deterministic, so a retried enqueue of the same message cannot create a second job. */
export function deliveryJobId(messageId: string, endpointId: string): string {
  return `${messageId}.${endpointId}`;
}

/**
 * BullMQ's own attempt limit, set high on purpose: the worker's retry schedule (config
 * HOOKFLEET_RETRY_SCHEDULE) decides when a delivery has run out of attempts, so the schedule is
 * configured in one place and a job never outlives it.
 */
export const DELIVERY_MAX_ATTEMPTS = 1000;

/** Days a failed delivery job stays in Redis, inspectable and replayable from Bull Board. */
export const FAILED_DELIVERY_RETENTION_DAYS = 14;

/** Job options every delivery is enqueued with. */
export const DELIVERY_JOB_OPTIONS = {
  attempts: DELIVERY_MAX_ATTEMPTS,
  backoff: { type: 'hookfleet' },
  // Completed jobs are history, kept briefly for Bull Board; the attempts table is the record.
  removeOnComplete: { age: 3600, count: 1000 },
  // Failed jobs stay inspectable and replayable for two weeks.
  removeOnFail: { age: FAILED_DELIVERY_RETENTION_DAYS * 24 * 3600 },
} as const;
