/** Adding delivery jobs to the `deliveries` queue. */
import type { Queue } from 'bullmq';
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
 * Jobs per `addBulk`. BullMQ serialises a whole pipeline before writing any of it, and Redis runs
 * it while this process waits; several smaller pipelines overlap the two, so Redis runs the first
 * while the next is being built (fan-out enqueue 12,600-17,700 -> 17,000-22,300 deliveries/s with
 * 1,000-job batches, issue #6). Below ~100 the per-call overhead starts to show.
 */
const JOBS_PER_PIPELINE = 200;

/**
 * Adds one job per message x endpoint, in pipelines of JOBS_PER_PIPELINE jobs sent without
 * waiting for each other. Job ids are deterministic, so adding the same deliveries again adds
 * nothing, which is what makes a retry after a partial failure safe. Settles only when every
 * pipeline has, then throws the first error the Redis client threw (callers turn it into
 * redisUnavailable, unavailable.ts).
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
  const pipelines = [];
  for (let i = 0; i < jobs.length; i += JOBS_PER_PIPELINE) {
    pipelines.push(queue.addBulk(jobs.slice(i, i + JOBS_PER_PIPELINE)));
  }
  const failure = (await Promise.allSettled(pipelines)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failure) throw failure.reason;
}
