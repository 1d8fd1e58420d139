/**
 * The reconciler: messages accepted but with no job in Redis. A send stores the message, adds its
 * fan-out job, then sets `enqueued_at`; two things can leave a message without a job:
 *
 * - stored but never queued: the producer died (or lost Redis) between the INSERT and the
 *   enqueue. `enqueued_at` stays null; found through the partial index on such rows, queued (job
 *   id = message id, so a job that did get there is not added twice) and marked. A message with
 *   attempts already recorded evidently had its job: it is only marked.
 * - queued, then lost: Redis acknowledged the job and lost it (a crash within the last second of
 *   AOF writes, a failover to a replica that had not received it). Each message is looked at
 *   once, VANISHED_GRACE_SECONDS after acceptance, following a cursor kept in Redis: if it has not a
 *   single attempt row and neither its fan-out job, its fan-out progress nor a delivery job of its
 *   first endpoints exists, it is queued again. The cost is one index probe of `attempts` per
 *   message and a few Redis EXISTS per message without attempts, bounded per run.
 *
 * Queueing again what was in fact delivered (its attempt rows lost with a crashed worker's
 * unwritten outcomes) repeats the delivery, which at-least-once allows; receivers deduplicate on
 * webhook-id, which stays the message id.
 */
import type { ShardedQueue } from '../queueShards.js';
import type { RedisClient } from '../redis.js';
import { existsEach } from './unseenFailures.js';
import type postgres from 'postgres';
import { markMessagesEnqueued } from '../db/messages.js';
import {
  cursorSecondsAgo,
  findUnattemptedMessages,
  findUnqueuedMessages,
  type MessageCursor,
} from '../db/unqueuedMessages.js';
import { addMessageJobs, deliveryJobId } from '../jobs.js';
import type { Logger } from '../logger.js';

/** A message not marked enqueued this long after acceptance was cut short (a batch takes 10 s at most). */
export const NOT_QUEUED_GRACE_SECONDS = 60;
/** Older unmarked messages are left alone: a day covers any outage of the reconciler itself. */
export const NOT_QUEUED_WINDOW_SECONDS = 24 * 3600;
/** Age at which a queued message should have attempts unless its job is waiting or postponed. */
export const VANISHED_GRACE_SECONDS = 120;
/**
 * Where the scan for vanished jobs starts when it has no cursor (first run, or Redis lost it),
 * and the oldest it looks at when it fell behind.
 */
const VANISHED_LOOKBACK_SECONDS = 3600;
/** Delivery jobs looked for per message: a postponed fan-out leaves one per endpoint. */
const DELIVERY_JOBS_CHECKED = 10;
/** Rows per statement, and statements per run of the scan for unmarked messages. */
const PAGE_SIZE = 1000;
const MAX_PAGES_PER_RUN = 20;
/**
 * Statements per run of the scan for vanished jobs: 100,000 messages a run, so a sustained
 * 1,600 messages/s at the default interval; a busier fleet skips what is over an hour old.
 */
const MAX_VANISHED_PAGES_PER_RUN = 100;

export interface ReconcileDeps {
  sql: postgres.Sql;
  messagesQueue: ShardedQueue;
  deliveriesQueue: ShardedQueue;
  /**
   * The connection the queues use, for the cursor and the existence checks; undefined on the
   * PostgreSQL queue backend, whose job inserts commit or fail with nothing acknowledged and
   * then lost, so there is no vanished job to look for.
   */
  redis: RedisClient | undefined;
  /** HOOKFLEET_QUEUE_PREFIX, which also prefixes the fan-out progress keys. */
  queuePrefix: string;
  /** Where the scan for vanished jobs keeps its cursor (a Redis key). */
  cursorKey: string;
  logger: Logger;
}

export interface ReconcileResult {
  /** Messages stored but never queued, queued now. */
  queued: number;
  /** Messages unmarked but with attempts (or no endpoints): marked only. */
  marked: number;
  /** Queued messages looked at for a vanished job. */
  checked: number;
  /** Of those, queued again because their job was gone. */
  requeued: number;
}

/** One run of the reconciler: both scans, each bounded to MAX_PAGES_PER_RUN statements. */
export async function reconcileMessages(deps: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { queued: 0, marked: 0, checked: 0, requeued: 0 };
  await queueUnqueued(deps, result);
  if (deps.redis !== undefined) await requeueVanished({ ...deps, redis: deps.redis }, result);
  if (result.queued + result.requeued > 0) {
    deps.logger.warn(
      { ...result },
      'reconciler queued messages that had no job in Redis (a producer died mid-send, or Redis lost writes)',
    );
  }
  return result;
}

async function queueUnqueued(deps: ReconcileDeps, result: ReconcileResult): Promise<void> {
  for (let page = 0; page < MAX_PAGES_PER_RUN; page++) {
    const rows = await findUnqueuedMessages(deps.sql, {
      graceSeconds: NOT_QUEUED_GRACE_SECONDS,
      windowSeconds: NOT_QUEUED_WINDOW_SECONDS,
      limit: PAGE_SIZE,
    });
    const toQueue = rows.filter((row) => row.hasEndpoints && !row.attempted);
    await addMessageJobs(
      deps.messagesQueue,
      toQueue.map((row) => row.id),
      new Map(toQueue.map((row) => [row.id, row.createdAtMs])),
    );
    await markMessagesEnqueued(
      deps.sql,
      rows.map((row) => row.id),
    );
    result.queued += toQueue.length;
    result.marked += rows.length - toQueue.length;
    if (rows.length < PAGE_SIZE) return;
  }
}

async function requeueVanished(
  deps: ReconcileDeps & { redis: RedisClient },
  result: ReconcileResult,
): Promise<void> {
  const { redis } = deps;
  const stored = await redis.get(deps.cursorKey);
  let cursor: MessageCursor = stored
    ? (JSON.parse(stored) as MessageCursor)
    : await cursorSecondsAgo(deps.sql, VANISHED_LOOKBACK_SECONDS);
  for (let page = 0; page < MAX_VANISHED_PAGES_PER_RUN; page++) {
    const found = await findUnattemptedMessages(deps.sql, {
      after: cursor,
      graceSeconds: VANISHED_GRACE_SECONDS,
      lookbackSeconds: VANISHED_LOOKBACK_SECONDS,
      limit: PAGE_SIZE,
    });
    result.checked += found.scanned;
    const gone = await withoutJobs(deps, found.messages);
    await addMessageJobs(
      deps.messagesQueue,
      gone.map((message) => message.id),
      new Map(gone.map((message) => [message.id, message.createdAtMs])),
    );
    result.requeued += gone.length;
    if (found.next === undefined) return;
    cursor = found.next;
    await redis.set(deps.cursorKey, JSON.stringify(cursor));
    if (found.scanned < PAGE_SIZE) return;
  }
}

/** The messages for which Redis holds no fan-out job, no fan-out progress and none of the first delivery jobs. */
async function withoutJobs<M extends { id: string; endpointIds: string[] }>(
  deps: ReconcileDeps & { redis: RedisClient },
  messages: readonly M[],
): Promise<M[]> {
  if (messages.length === 0) return [];
  const { redis } = deps;
  const keysOf = (message: M) => [
    deps.messagesQueue.forMessage(message.id).toKey(message.id),
    // The fan-out's progress bitmap (worker/fanOutProgress.ts): a fan-out under way.
    `${deps.queuePrefix}:fan-out:${message.id}`,
    ...message.endpointIds
      .slice(0, DELIVERY_JOBS_CHECKED)
      .map((endpointId) =>
        deps.deliveriesQueue.forMessage(message.id).toKey(deliveryJobId(message.id, endpointId)),
      ),
  ];
  // One EXISTS per key (a message's keys hash to different slots on a Redis Cluster).
  const keys = messages.map(keysOf);
  const replies = await existsEach(redis, keys.flat());
  let next = 0;
  return messages.filter((_, index) => {
    let count = 0;
    for (let k = 0; k < keys[index]!.length; k++) {
      const [error, exists] = replies[next++] ?? [new Error('no reply'), 0];
      if (error) throw error;
      count += Number(exists);
    }
    return count === 0;
  });
}
