/**
 * Queue and job names, job payload schemas.
 *
 * Terminology
 * - endpoint: a receiver's URL with its signing secret and the event types it subscribes to.
 * - message: one event handed to hookfleet (event type + JSON payload), with a `msg_` id that
 *   receivers see as `webhook-id` and can deduplicate on. Stored once in PostgreSQL with the
 *   exact body bytes and its endpoint set (fixed at acceptance); one `fan-out` job in the
 *   `messages` queue.
 * - fan-out: a worker taking a message job and making the first attempt to each of its endpoints.
 * - delivery: one message to one endpoint. It gets a job of its own in the `deliveries` queue
 *   only when it needs its own schedule: a retry, a postponement by the endpoint limits, a
 *   hand-off of a slow first attempt, a redeliver or a replay.
 * - attempt: one HTTP POST of a delivery. A delivery makes attempts until one succeeds (2xx),
 *   one fails permanently, or the retry schedule runs out.
 * - success recording: writing `last_success_at` and the failure counters of an endpoint,
 *   coalesced in each worker and flushed in batches.
 * - sweep: the scheduled job that deactivates endpoints with no success for too long.
 *
 * Jobs carry ids, never bodies, URLs or secrets: the body is in the message row, the endpoint in
 * its row, so Redis holds about the same few hundred bytes per queued delivery whatever the
 * payload size, and Bull Board shows nothing secret.
 */
import type { Queue } from 'bullmq';
import { z } from 'zod';
import type { ShardedQueue } from './queueShards.js';

/** One job per message: its fan-out. */
export const MESSAGES_QUEUE = 'messages';
/** One job per delivery that needs its own schedule (retries, postponements, redeliveries). */
export const DELIVERIES_QUEUE = 'deliveries';
/** The stale-endpoint sweep and other scheduled work. */
export const MAINTENANCE_QUEUE = 'maintenance';

/** A message's fan-out job. */
export const FAN_OUT_JOB = 'fan-out';
/** A delivery whose first attempt failed, was postponed, or is guarded while it runs long. */
export const RETRY_JOB = 'retry';
/** A delivery sent again on request (`messages redeliver`, POST /v1/messages/:id/redeliver). */
export const REDELIVER_JOB = 'redeliver';
/** A failed delivery sent again (`failed replay`, recover). */
export const REPLAY_JOB = 'replay';
/** Name of every delivery job before fan-out jobs existed; still processed, never added. */
export const DELIVERY_JOB = 'deliver';

/** What a fan-out job carries: ids only; the body and endpoint set are in the message row. */
export const messageJobSchema = z.object({
  messageId: z.string(),
  /** When the producer accepted the message (ms since epoch), for end-to-end latency. */
  enqueuedAtMs: z.number(),
  /**
   * The message's owner (null: none), present when the job was counted in its owner's share of
   * the queue (delivery/ownerQueue.ts), which the fan-out gives back when it completes.
   */
  ownerId: z.string().nullable().optional(),
});
export type MessageJobData = z.infer<typeof messageJobSchema>;

/** Deterministic, so a retried enqueue of the same message adds nothing. */
export function messageJobId(messageId: string): string {
  return messageId;
}

/**
 * What a delivery job carries. The endpoint's URL and secret are *not* here: the worker reads
 * them from PostgreSQL, so secrets never sit in Redis or show in Bull Board, and a URL change or
 * deactivation takes effect on queued deliveries. Nor is the body: the worker reads it from the
 * message row (and caches it).
 */
export const deliveryJobSchema = z.object({
  messageId: z.string(),
  endpointId: z.string(),
  /**
   * Attempts of this delivery made before this job (the fan-out's first attempt), so attempt
   * numbers and the retry schedule continue where they were. Absent means 0.
   */
  attemptsBefore: z.number().optional(),
  /** When the producer accepted the message (ms since epoch), for end-to-end latency. */
  enqueuedAtMs: z.number(),
  /**
   * Jobs queued before fan-out jobs existed carry the body and event type; a worker uses the
   * body as is (a message row of that time has no `body`). New jobs never carry them.
   */
  eventType: z.string().optional(),
  body: z.string().optional(),
});
export type DeliveryJobData = z.infer<typeof deliveryJobSchema>;

/** Deterministic, so a retried enqueue of the same delivery cannot create a second job. */
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
} as const;

/** Job options every fan-out is enqueued with. */
export const MESSAGE_JOB_OPTIONS = {
  // A fan-out that throws (PostgreSQL unreachable) is tried again; what it finished is skipped.
  attempts: DELIVERY_MAX_ATTEMPTS,
  backoff: { type: 'exponential', delay: 1000 },
} as const;

/**
 * How long finished delivery and fan-out jobs stay in Redis: set on the workers that finish them
 * (BullMQ applies a worker's setting to jobs without their own), not on each job, where it took 76
 * of the ~1,000 bytes every queued job costs. Jobs enqueued by an older version carry their own,
 * which BullMQ applies first.
 */
export const FINISHED_JOBS_KEPT = {
  // Completed jobs are history, kept briefly for Bull Board; the attempts table is the record.
  removeOnComplete: { age: 3600, count: 1000 },
  // Failed jobs stay inspectable and replayable for two weeks.
  removeOnFail: { age: FAILED_DELIVERY_RETENTION_DAYS * 24 * 3600 },
} as const;

/**
 * Jobs per `addBulk`. BullMQ serialises a whole pipeline before writing any of it, and Redis runs
 * it while this process waits; several smaller pipelines overlap the two, so Redis runs the first
 * while the next is being built (fan-out enqueue 12,600-17,700 -> 17,000-22,300 deliveries/s with
 * 1,000-job batches of per-delivery jobs). Below ~100 the per-call overhead starts to show.
 */
const JOBS_PER_PIPELINE = 200;

/**
 * Adds one fan-out job per message id, in pipelines of JOBS_PER_PIPELINE jobs sent without
 * waiting for each other. Job ids are the message ids, so adding the same messages again adds
 * nothing, which is what makes a retry after a partial failure safe. Settles only when every
 * pipeline has, then throws the first error the Redis client threw. `acceptedAtMs` gives when a
 * message was accepted, if not just now (the reconciler queues messages accepted a while ago; the
 * retry schedule's span counts from acceptance).
 */
/**
 * The messages' places in their owners' shares of the queue (delivery/ownerQueue.ts), one per
 * message id: the owner (null: none), which the fan-out gives back, and the BullMQ priority.
 */
export interface OwnerPlaces {
  ownerIds: readonly (string | null)[];
  priorities: readonly number[];
}

export async function addMessageJobs(
  queue: ShardedQueue,
  messageIds: readonly string[],
  acceptedAtMs?: ReadonlyMap<string, number>,
  owners?: OwnerPlaces,
): Promise<void> {
  const now = Date.now();
  // Each message goes to its shard (queueShards.ts), in pipelines of its own: on a Redis Cluster
  // a pipeline must stay within one slot.
  const byShard = new Map<Queue, Parameters<Queue['addBulk']>[0]>();
  messageIds.forEach((messageId, i) => {
    const shard = queue.forMessage(messageId);
    const jobs = byShard.get(shard) ?? [];
    if (jobs.length === 0) byShard.set(shard, jobs);
    const priority = owners?.priorities[i] ?? 0;
    const enqueuedAtMs = acceptedAtMs?.get(messageId) ?? now;
    const data: MessageJobData = owners
      ? { messageId, enqueuedAtMs, ownerId: owners.ownerIds[i] ?? null }
      : { messageId, enqueuedAtMs };
    jobs.push({
      name: FAN_OUT_JOB,
      data,
      opts: {
        ...MESSAGE_JOB_OPTIONS,
        jobId: messageJobId(messageId),
        ...(priority > 0 && { priority }),
      },
    });
  });
  const pipelines = [];
  for (const [shard, jobs] of byShard) {
    for (let i = 0; i < jobs.length; i += JOBS_PER_PIPELINE) {
      pipelines.push(shard.addBulk(jobs.slice(i, i + JOBS_PER_PIPELINE)));
    }
  }
  const failure = (await Promise.allSettled(pipelines)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failure) throw failure.reason;
}
