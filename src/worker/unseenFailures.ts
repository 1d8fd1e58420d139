/**
 * Failed jobs the failure tools could not see. `hookfleet failed list`, recover and the health
 * page read failures from the attempt history, where the worker writes a delivery's final
 * 'failed' attempt. Some jobs end in BullMQ's failed set without one: a delivery job failed for
 * stalling too often (its worker was killed each time), a fan-out job failed the same way before
 * it reached some endpoints, or a final attempt whose row a crashed worker never wrote. This scan
 * reads each queue's failed set in the order jobs failed, from a cursor kept in Redis, and writes
 * the missing final attempt (db/unseenFailures.ts), so every delivery that will not be attempted
 * again is listed and replayable whatever made it fail.
 *
 * Jobs that failed in the last FAILURE_GRACE_MS are left for the next run: their worker's own
 * row is normally written by then (the success recorder flushes every second).
 */
import { Job, type Queue } from 'bullmq';
import type { RedisClient } from '../redis.js';
import type postgres from 'postgres';
import {
  recordUnseenFailures,
  unattemptedEndpoints,
  type UnseenFailure,
} from '../db/unseenFailures.js';
import { deliveryJobId, deliveryJobSchema, DELIVERIES_QUEUE, messageJobSchema } from '../jobs.js';
import { readableText } from '../readableText.js';

/** How long after a job failed it is looked at. */
export const FAILURE_GRACE_MS = 30_000;
/** Failed jobs read per page, and pages per queue per run. */
const PAGE_SIZE = 500;
const MAX_PAGES_PER_RUN = 20;

export interface UnseenFailuresDeps {
  sql: postgres.Sql;
  redis: RedisClient;
  /** The `deliveries` and `messages` queues. */
  queues: readonly Queue[];
  /** A Redis key per queue name where the scan keeps its cursor. */
  cursorKey: (queue: Queue) => string;
  /** The `deliveries` shard a message's jobs are in (queueShards.ts). Default: the one named so. */
  deliveriesOf?: (messageId: string) => Queue;
}

/** One run over every queue's failed set; returns how many final attempts were written. */
export async function recordFailedJobs(deps: UnseenFailuresDeps): Promise<number> {
  let written = 0;
  for (const queue of deps.queues) written += await scanQueue(deps, queue);
  return written;
}

async function scanQueue(deps: UnseenFailuresDeps, queue: Queue): Promise<number> {
  const cursorKey = deps.cursorKey(queue);
  const upTo = Date.now() - FAILURE_GRACE_MS;
  let cursor = Number((await deps.redis.get(cursorKey)) ?? 0);
  let written = 0;
  for (let page = 0; page < MAX_PAGES_PER_RUN; page++) {
    // By failure time (the set's score), after the cursor: each failed job is read once.
    const entries = await deps.redis.zrangebyscore(
      queue.keys.failed!,
      `(${cursor}`,
      upTo,
      'WITHSCORES',
      'LIMIT',
      0,
      PAGE_SIZE,
    );
    const ids: string[] = [];
    for (let i = 0; i < entries.length; i += 2) ids.push(entries[i]!);
    if (ids.length === 0) break;
    const jobs = (await Promise.all(ids.map((id) => Job.fromId(queue, id)))).filter(
      (job): job is Job => job !== undefined,
    );
    written += await recordFailures(deps, queue, jobs);
    const last = Number(entries[entries.length - 1]);
    // Jobs sharing the last millisecond beyond this page would be skipped by the exclusive
    // bound: stop before it, unless the whole page is that one millisecond.
    const firstOfLast = entries.findIndex((value, i) => i % 2 === 1 && Number(value) === last);
    cursor = ids.length === PAGE_SIZE && firstOfLast > 1 ? Number(entries[firstOfLast - 2]) : last;
    await deps.redis.set(cursorKey, String(cursor));
    if (ids.length < PAGE_SIZE) break;
  }
  return written;
}

async function recordFailures(
  deps: UnseenFailuresDeps,
  queue: Queue,
  jobs: readonly Job[],
): Promise<number> {
  const failures: UnseenFailure[] = [];
  const fanOuts: { messageId: string; failedAtMs: number; error: string }[] = [];
  for (const job of jobs) {
    const failedAtMs = job.finishedOn ?? Date.now();
    const error = readableText(`not attempted again: ${job.failedReason || 'the job failed'}`);
    const delivery = deliveryJobSchema.safeParse(job.data);
    if (queue.name === DELIVERIES_QUEUE && delivery.success) {
      const { messageId, endpointId, attemptsBefore } = delivery.data;
      const attemptNumber = (attemptsBefore ?? 0) + job.attemptsMade;
      failures.push({
        messageId,
        endpointId,
        attemptNumber,
        failedAtMs,
        error,
        onlyIfUnattempted: false,
      });
      continue;
    }
    const message = messageJobSchema.safeParse(job.data);
    if (message.success) fanOuts.push({ messageId: message.data.messageId, failedAtMs, error });
  }
  failures.push(...(await unreachedByFanOuts(deps, fanOuts)));
  return recordUnseenFailures(deps.sql, failures);
}

/**
 * The deliveries of failed fan-outs that were never attempted and have no job of their own
 * (which would end in an outcome by itself): each becomes a failure with the fan-out's reason.
 */
async function unreachedByFanOuts(
  deps: UnseenFailuresDeps,
  fanOuts: readonly { messageId: string; failedAtMs: number; error: string }[],
): Promise<UnseenFailure[]> {
  const unattempted = await unattemptedEndpoints(
    deps.sql,
    fanOuts.map((fanOut) => fanOut.messageId),
  );
  const deliveries = deps.queues.find((queue) => queue.name === DELIVERIES_QUEUE);
  const candidates = fanOuts.flatMap((fanOut) =>
    (unattempted.get(fanOut.messageId) ?? []).map((endpointId) => ({ ...fanOut, endpointId })),
  );
  if (candidates.length === 0 || deliveries === undefined) return [];
  const keyOf = ({ messageId, endpointId }: { messageId: string; endpointId: string }) =>
    (deps.deliveriesOf?.(messageId) ?? deliveries).toKey(deliveryJobId(messageId, endpointId));
  const replies = await existsEach(deps.redis, candidates.map(keyOf));
  return candidates
    .filter((_, index) => {
      const [error, count] = replies[index] ?? [new Error('no reply'), 1];
      if (error) throw error;
      return count === 0;
    })
    .map(({ messageId, endpointId, failedAtMs, error }) => ({
      messageId,
      endpointId,
      attemptNumber: 1,
      failedAtMs,
      error,
      onlyIfUnattempted: true,
    }));
}

/**
 * EXISTS of each key: one pipeline on one node; on a Redis Cluster, where a pipeline must stay on
 * one node, commands sent side by side.
 */
export async function existsEach(
  redis: RedisClient,
  keys: readonly string[],
): Promise<[Error | null, unknown][]> {
  if (redis.isCluster) {
    return Promise.all(
      keys.map((key) =>
        redis.exists(key).then(
          (count): [Error | null, unknown] => [null, count],
          (error: Error): [Error | null, unknown] => [error, null],
        ),
      ),
    );
  }
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.exists(key);
  return (await pipeline.exec()) ?? [];
}
