import { randomBytes } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { MessageRow } from '../db/schema.js';
import {
  DELIVERY_JOB_OPTIONS,
  REDELIVER_JOB,
  REPLAY_JOB,
  deliveryJobId,
  messageJobId,
  type DeliveryJobData,
} from '../jobs.js';

export interface Redelivery {
  endpointId: string;
  /** retried: the failed job is back in the queue; enqueued: a new job; pending: still queued, left alone. */
  action: 'retried' | 'enqueued' | 'pending';
  jobId: string;
}

export interface RedeliverOptions {
  /**
   * A stable name for this redelivery of the delivery to `endpointId` (a replay names it after the
   * failure it replays). With one, a new job that already exists is not added again, so a replay
   * run twice sends once. Without one (an explicit redeliver), every call adds a new job.
   */
  redeliveryKey?: (endpointId: string) => string;
  /**
   * The `messages` queue. With it, while the message's fan-out is still queued or running, a
   * delivery without a job of its own is left alone (`pending`): its first attempt is on its way.
   * Default: not checked (a replay: a failed delivery's fan-out is over).
   */
  messagesQueue?: Queue;
}

/** Job states in which a delivery (or a fan-out) is still going to be attempted. */
const PENDING_STATES = new Set([
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'paused',
]);

/**
 * Sends a message to `endpointIds` again. A delivery whose job is in the failed set is retried in
 * place (`job.retry('failed')`, attempts reset, so it gets the whole retry schedule again). A
 * delivery still queued is left alone. Otherwise (succeeded, first attempt made by a fan-out, or
 * the job was removed by its retention) a new job is added, ids only (the worker reads the body
 * from the message row, so it sends the same bytes and `webhook-id`): with a unique id, or one
 * named by `options.redeliveryKey` (a replay).
 */
export async function redeliverMessage(
  queue: Queue<DeliveryJobData>,
  message: MessageRow,
  endpointIds: readonly string[],
  options: RedeliverOptions = {},
): Promise<Redelivery[]> {
  const results: Redelivery[] = [];
  const fanOutPending =
    options.messagesQueue !== undefined &&
    PENDING_STATES.has(await options.messagesQueue.getJobState(messageJobId(message.id)));
  // A message can fan out to thousands of endpoints: a few dozen Redis round trips at a time.
  for (let start = 0; start < endpointIds.length; start += CHUNK) {
    const chunk = endpointIds.slice(start, start + CHUNK);
    results.push(
      ...(await Promise.all(
        chunk.map((endpointId) => redeliverOne(queue, message, endpointId, options, fanOutPending)),
      )),
    );
  }
  return results;
}

const CHUNK = 50;

async function redeliverOne(
  queue: Queue<DeliveryJobData>,
  message: MessageRow,
  endpointId: string,
  options: RedeliverOptions,
  fanOutPending: boolean,
): Promise<Redelivery> {
  const jobId = deliveryJobId(message.id, endpointId);
  const job = (await queue.getJob(jobId)) as Job<DeliveryJobData> | undefined;
  const kept = job && (await retryOrKeep(job));
  if (kept) return { endpointId, action: kept, jobId };
  if (!job && fanOutPending)
    return { endpointId, action: 'pending', jobId: messageJobId(message.id) };
  const key = options.redeliveryKey?.(endpointId);
  const newJobId = key
    ? `${jobId}.r${key}`
    : `${jobId}.r${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  const earlier = key && ((await queue.getJob(newJobId)) as Job<DeliveryJobData> | undefined);
  // This redelivery was added before (a replay run twice): it is not added again.
  if (earlier)
    return { endpointId, action: (await retryOrKeep(earlier)) ?? 'pending', jobId: newJobId };
  const oldBody = message.body === null ? job?.data.body : undefined;
  const data: DeliveryJobData = {
    messageId: message.id,
    endpointId,
    enqueuedAtMs: Date.now(),
    // A message stored before `messages.body` existed: the exact bytes first sent while its old
    // job still has them; else the worker re-serialises the payload.
    ...(oldBody !== undefined && { eventType: message.eventType, body: oldBody }),
  };
  await queue.add(key ? REPLAY_JOB : REDELIVER_JOB, data, {
    ...DELIVERY_JOB_OPTIONS,
    jobId: newJobId,
  });
  return { endpointId, action: 'enqueued', jobId: newJobId };
}

/**
 * A failed job is retried in place (attempts reset: the whole retry schedule again); a job still
 * queued is left alone. Undefined when neither: the job succeeded, so a new one is needed.
 */
async function retryOrKeep(job: Job<DeliveryJobData>): Promise<'retried' | 'pending' | undefined> {
  if ((await job.getState()) === 'failed') {
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return 'retried';
    } catch {
      // Someone (Bull Board, another redeliver) moved it meanwhile; read its state again below.
    }
  }
  return PENDING_STATES.has(await job.getState()) ? 'pending' : undefined;
}
