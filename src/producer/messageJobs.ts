/** Adding fan-out jobs to the `messages` queue: one per stored message, ids only. */
import type { Queue } from 'bullmq';
import type { ShardedQueue } from '../queueShards.js';
import { FAN_OUT_JOB, MESSAGE_JOB_OPTIONS, messageJobId, type MessageJobData } from '../jobs.js';

/**
 * Jobs per `addBulk`. BullMQ serialises a whole pipeline before writing any of it, and Redis runs
 * it while this process waits; several smaller pipelines overlap the two, so Redis runs the first
 * while the next is being built (fan-out enqueue 12,600-17,700 -> 17,000-22,300 deliveries/s with
 * 1,000-job batches of per-delivery jobs). Below ~100 the per-call overhead starts to show.
 */
const JOBS_PER_PIPELINE = 200;

type JobsOptions = Parameters<Queue['addBulk']>[0][number];

/**
 * Adds one fan-out job per message id, in pipelines of JOBS_PER_PIPELINE jobs sent without
 * waiting for each other. Job ids are the message ids, so adding the same messages again adds
 * nothing, which is what makes a retry after a partial failure safe. Settles only when every
 * pipeline has, then throws the first error the Redis client threw. Each message goes to its
 * shard of the queue (queueShards.ts), one pipeline per shard at least: on a Redis Cluster a
 * pipeline must stay within one slot.
 */
export async function addMessageJobs(
  queue: ShardedQueue,
  messageIds: readonly string[],
): Promise<void> {
  const enqueuedAtMs = Date.now();
  const byShard = new Map<Queue, JobsOptions[]>();
  for (const messageId of messageIds) {
    const shard = queue.forMessage(messageId);
    const jobs = byShard.get(shard) ?? [];
    if (jobs.length === 0) byShard.set(shard, jobs);
    jobs.push({
      name: FAN_OUT_JOB,
      data: { messageId, enqueuedAtMs } satisfies MessageJobData,
      opts: { ...MESSAGE_JOB_OPTIONS, jobId: messageJobId(messageId) },
    });
  }
  const pipelines = [];
  for (const [shard, shardJobs] of byShard) {
    for (let i = 0; i < shardJobs.length; i += JOBS_PER_PIPELINE) {
      pipelines.push(shard.addBulk(shardJobs.slice(i, i + JOBS_PER_PIPELINE)));
    }
  }
  const failure = (await Promise.allSettled(pipelines)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failure) throw failure.reason;
}
