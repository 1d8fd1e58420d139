/** Adding delivery jobs to the `deliveries` queue, and the error a caller gets when Redis cannot take them. */
import type { Queue } from 'bullmq';
import { HookfleetError } from '../errors.js';
import {
  DELIVERY_JOB,
  DELIVERY_JOB_OPTIONS,
  deliveryJobId,
  type DeliveryJobData,
} from '../jobs.js';

/** A stored message whose deliveries are to be enqueued. */
export interface MessageDeliveries {
  messageId: string;
  eventType: string;
  /** The payload as JSON text, sent as is. */
  body: string;
  endpointIds: readonly string[];
}

/**
 * Adds one job per message x endpoint with one `addBulk` (one Redis pipeline), however many
 * messages. Job ids are deterministic, so adding the same deliveries again adds nothing.
 * Throws what the Redis client threw; see redisUnavailable.
 */
export async function addDeliveryJobs(
  queue: Queue,
  messages: readonly MessageDeliveries[],
): Promise<void> {
  const enqueuedAtMs = Date.now();
  const jobs = [];
  for (const { messageId, eventType, body, endpointIds } of messages) {
    for (const endpointId of endpointIds) {
      jobs.push({
        name: DELIVERY_JOB,
        data: { messageId, endpointId, eventType, body, enqueuedAtMs } satisfies DeliveryJobData,
        opts: { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(messageId, endpointId) },
      });
    }
  }
  if (jobs.length > 0) await queue.addBulk(jobs);
}

/** The 503 a caller gets when Redis cannot take the deliveries; it names the message if one was stored. */
export function redisUnavailable(
  reason: string,
  messageId?: string,
  cause?: unknown,
): HookfleetError {
  const stored =
    messageId === undefined
      ? 'nothing was stored'
      : `message ${messageId} was stored but not enqueued (send again with the same idempotencyKey to resume it)`;
  const error = new HookfleetError(
    'redis_unavailable',
    `Redis is unavailable (${reason}); ${stored}. Retry later.`,
    503,
  );
  if (cause !== undefined) error.cause = cause;
  return error;
}
