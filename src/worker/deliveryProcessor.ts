/**
 * The processor of the `deliveries` queue: a delivery that needs its own schedule (a retry, a
 * postponement, a guarded slow first attempt, a redeliver or a replay). Each run is one attempt,
 * made by the step fan-outs use too (deliveryAttempt.ts), with the body read from the message
 * row (cached) or, for a job queued before fan-out jobs existed, from the job itself.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { withDeadline } from '../deadline.js';
import type { DeliveryJobData } from '../jobs.js';
import { messageContent, type MessageContent } from '../delivery/envelope.js';
import type { DeliveryAttempt } from './deliveryAttempt.js';
import type { MessageBodies } from './messageBodies.js';

export interface DeliveryProcessorDeps {
  attempt: DeliveryAttempt;
  bodies: MessageBodies;
}

/** Longest wait for a body from PostgreSQL before the delivery is postponed. */
const BODY_READ_TIMEOUT_MS = 3000;
/** How long a delivery waits when its body cannot be read, plus up to half as much of jitter. */
const BODY_READ_RETRY_MS = 2000;

/**
 * Makes one attempt of a delivery job. Returns on 2xx; throws the RetryableDeliveryError back to
 * BullMQ (which waits as the backoff strategy says, then calls this again), or an
 * UnrecoverableError when the failure is permanent or the retry schedule has run out, which sends
 * the job to the failed set. A postponement moves the job back to the delayed set without using
 * a step of the schedule.
 */
export function createDeliveryProcessor(deps: DeliveryProcessorDeps) {
  /**
   * The body from the message row (cached); when PostgreSQL cannot be reached the delivery is
   * postponed, as when its endpoint cannot be read: no attempt, no step of the schedule used.
   */
  async function readBody(
    job: Job<DeliveryJobData>,
    token: string | undefined,
  ): Promise<MessageContent | undefined> {
    try {
      return await withDeadline(
        deps.bodies.get(job.data.messageId),
        BODY_READ_TIMEOUT_MS,
        `message body read took over ${BODY_READ_TIMEOUT_MS} ms`,
      );
    } catch (error) {
      if (token === undefined) throw error;
      const delayMs = Math.round(BODY_READ_RETRY_MS * (1 + Math.random() / 2));
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError(`message body read failed; delivery postponed by ${delayMs} ms`);
    }
  }

  return async function processDelivery(
    job: Job<DeliveryJobData>,
    token?: string,
  ): Promise<{ statusCode: number }> {
    const { messageId, endpointId } = job.data;
    // A job queued before fan-out jobs existed carries its body, which its first attempts sent bare.
    const content =
      job.data.body !== undefined ? messageContent(job.data.body) : await readBody(job, token);
    if (content === undefined) {
      throw new UnrecoverableError(`message ${messageId} no longer exists (past its retention)`);
    }
    const outcome = await deps.attempt({
      messageId,
      endpointId,
      content,
      attemptNumber: (job.data.attemptsBefore ?? 0) + job.attemptsMade + 1,
      jobId: job.id!,
      enqueuedAtMs: job.data.enqueuedAtMs ?? job.timestamp,
      canPostpone: token !== undefined,
    });
    switch (outcome.kind) {
      case 'succeeded':
        return { statusCode: outcome.statusCode };
      case 'postponed':
        // moveToDelayed skips BullMQ's attempt count, so the retry schedule is untouched.
        await job.moveToDelayed(Date.now() + outcome.delayMs, token);
        throw new DelayedError(`${outcome.reason}: delivery postponed by ${outcome.delayMs} ms`);
      case 'retry':
        // The backoff strategy (startWorker.ts) waits this long: the endpoint's own schedule.
        outcome.error.retryInMs = outcome.delayMs;
        throw outcome.error;
      case 'failed':
        throw new UnrecoverableError(outcome.reason);
    }
  };
}
