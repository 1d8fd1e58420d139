/**
 * Delivery jobs a fan-out adds when a delivery needs a schedule of its own: a retry after a
 * failed first attempt, a postponement by the endpoint limits, and the guard of a first attempt
 * still running when its fan-out completes. Ids only (jobs.ts); the job id is the delivery's, so
 * adding one twice (a fan-out re-run after a crash) adds nothing.
 */
import type { ShardedQueue } from '../queueShards.js';
import { DELIVERY_JOB_OPTIONS, RETRY_JOB, deliveryJobId, type DeliveryJobData } from '../jobs.js';

export interface DeliveryFollowUp {
  messageId: string;
  endpointId: string;
  /** Attempts already made (1 after a failed first attempt, 0 for a postponement or a guard). */
  attemptsBefore: number;
  enqueuedAtMs: number;
  delayMs: number;
}

export interface DeliveryFollowUps {
  add(followUp: DeliveryFollowUp): Promise<void>;
  /**
   * Removes the delivery's job (a guard whose attempt has ended) and adds `next` in its place when
   * given. False when the job could not be removed because a worker holds it: the guard fired
   * (this attempt outlived its timeout and margin) and makes the next attempt itself.
   */
  replace(messageId: string, endpointId: string, next?: DeliveryFollowUp): Promise<boolean>;
}

export function createDeliveryFollowUps(queues: ShardedQueue<DeliveryJobData>): DeliveryFollowUps {
  async function add(followUp: DeliveryFollowUp): Promise<void> {
    const { messageId, endpointId, attemptsBefore, enqueuedAtMs, delayMs } = followUp;
    await queues
      .forMessage(messageId)
      .add(
        RETRY_JOB,
        { messageId, endpointId, attemptsBefore, enqueuedAtMs },
        { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(messageId, endpointId), delay: delayMs },
      );
  }
  return {
    add,
    async replace(messageId, endpointId, next) {
      const queue = queues.forMessage(messageId);
      // remove() refuses a job that is locked (active); it returns 0 when nothing was removed.
      const removed = await queue.remove(deliveryJobId(messageId, endpointId));
      if (
        removed === 0 &&
        (await queue.getJobState(deliveryJobId(messageId, endpointId))) === 'active'
      ) {
        return false;
      }
      if (next) await add(next);
      return true;
    },
  };
}
