/** Adding fan-out jobs to the `messages` queue: one per stored message, ids only. */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { takeOwnerPlaces } from '../delivery/ownerQueue.js';
import { FAN_OUT_JOB, MESSAGE_JOB_OPTIONS, messageJobId, type MessageJobData } from '../jobs.js';

/**
 * Jobs per `addBulk`. BullMQ serialises a whole pipeline before writing any of it, and Redis runs
 * it while this process waits; several smaller pipelines overlap the two, so Redis runs the first
 * while the next is being built (fan-out enqueue 12,600-17,700 -> 17,000-22,300 deliveries/s with
 * 1,000-job batches of per-delivery jobs). Below ~100 the per-call overhead starts to show.
 */
const JOBS_PER_PIPELINE = 200;

/** Each message's owner, so the jobs take their owners' places in the queue (ownerQueue.ts). */
export interface OwnerShares {
  /** The fleet's Redis and queue prefix, where the owners' counts are. */
  redis: Redis;
  prefix: string;
  /** HOOKFLEET_OWNER_QUEUE_SHARE; 0: no places taken, no priorities. */
  share: number;
  /** One per message id, in the same order; null for a message without an owner. */
  ownerIds: readonly (string | null)[];
}

/**
 * Adds one fan-out job per message id, in pipelines of JOBS_PER_PIPELINE jobs sent without
 * waiting for each other. Job ids are the message ids, so adding the same messages again adds
 * nothing, which is what makes a retry after a partial failure safe. Settles only when every
 * pipeline has, then throws the first error the Redis client threw.
 */
export async function addMessageJobs(
  queue: Queue,
  messageIds: readonly string[],
  owners?: OwnerShares,
): Promise<void> {
  const enqueuedAtMs = Date.now();
  const counted = owners !== undefined && owners.share > 0;
  // A retried enqueue counts its messages again though their jobs exist: the count drifts up by
  // that much until the key expires, which only lowers those owners' priority a little meanwhile.
  const priorities = counted
    ? await takeOwnerPlaces(owners.redis, owners.prefix, owners.share, owners.ownerIds)
    : undefined;
  const jobs = messageIds.map((messageId, i) => {
    const priority = priorities?.[i] ?? 0;
    const data: MessageJobData = counted
      ? { messageId, enqueuedAtMs, ownerId: owners.ownerIds[i] ?? null }
      : { messageId, enqueuedAtMs };
    return {
      name: FAN_OUT_JOB,
      data,
      opts: {
        ...MESSAGE_JOB_OPTIONS,
        jobId: messageJobId(messageId),
        ...(priority > 0 && { priority }),
      },
    };
  });
  const pipelines = [];
  for (let i = 0; i < jobs.length; i += JOBS_PER_PIPELINE) {
    pipelines.push(queue.addBulk(jobs.slice(i, i + JOBS_PER_PIPELINE)));
  }
  const failure = (await Promise.allSettled(pipelines)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failure) throw failure.reason;
}
