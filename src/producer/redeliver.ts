import { randomBytes } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { MessageRow } from '../db/schema.js';
import {
  DELIVERY_JOB,
  DELIVERY_JOB_OPTIONS,
  deliveryJobId,
  type DeliveryJobData,
} from '../jobs.js';

export interface Redelivery {
  endpointId: string;
  /** retried: the failed job is back in the queue; enqueued: a new job; pending: still queued, left alone. */
  action: 'retried' | 'enqueued' | 'pending';
  jobId: string;
}

/** Job states in which a delivery is still going to be attempted. */
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
 * delivery still queued is left alone. Otherwise (succeeded, or the job was removed by its
 * retention) a new job with a new unique id is added, with the same body and `webhook-id`.
 */
export async function redeliverMessage(
  queue: Queue<DeliveryJobData>,
  message: MessageRow,
  endpointIds: readonly string[],
): Promise<Redelivery[]> {
  const results: Redelivery[] = [];
  // A message can fan out to thousands of endpoints: a few dozen Redis round trips at a time.
  for (let start = 0; start < endpointIds.length; start += CHUNK) {
    const chunk = endpointIds.slice(start, start + CHUNK);
    results.push(
      ...(await Promise.all(chunk.map((endpointId) => redeliverOne(queue, message, endpointId)))),
    );
  }
  return results;
}

const CHUNK = 50;

async function redeliverOne(
  queue: Queue<DeliveryJobData>,
  message: MessageRow,
  endpointId: string,
): Promise<Redelivery> {
  const jobId = deliveryJobId(message.id, endpointId);
  const job = (await queue.getJob(jobId)) as Job<DeliveryJobData> | undefined;
  if (job && (await job.getState()) === 'failed') {
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return { endpointId, action: 'retried', jobId };
    } catch {
      // Someone (Bull Board, another redeliver) moved it meanwhile; read its state again below.
    }
  }
  if (job && PENDING_STATES.has(await job.getState()))
    return { endpointId, action: 'pending', jobId };
  const newJobId = `${jobId}.r${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  const data: DeliveryJobData = {
    messageId: message.id,
    endpointId,
    eventType: message.eventType,
    // The exact bytes first sent while the job still has them; else re-serialised from the row.
    body: job?.data.body ?? JSON.stringify(message.payload),
    enqueuedAtMs: Date.now(),
  };
  await queue.add(DELIVERY_JOB, data, { ...DELIVERY_JOB_OPTIONS, jobId: newJobId });
  return { endpointId, action: 'enqueued', jobId: newJobId };
}
