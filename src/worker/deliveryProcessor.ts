/**
 * The processor of the `deliveries` queue: a delivery that needs its own schedule (a retry, a
 * postponement, a guarded slow first attempt, a redeliver or a replay). Each run is one attempt,
 * made by the step fan-outs use too (deliveryAttempt.ts), with the body read from the message
 * row (cached) or, for a job queued before fan-out jobs existed, from the job itself.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { DeliveryJobData } from '../jobs.js';
import type { DeliveryAttempt } from './deliveryAttempt.js';
import type { MessageBodies } from './messageBodies.js';

export interface DeliveryProcessorDeps {
  attempt: DeliveryAttempt;
  bodies: MessageBodies;
}

/**
 * Makes one attempt of a delivery job. Returns on 2xx; throws the RetryableDeliveryError back to
 * BullMQ (which waits as the backoff strategy says, then calls this again), or an
 * UnrecoverableError when the failure is permanent or the retry schedule has run out, which sends
 * the job to the failed set. A postponement moves the job back to the delayed set without using
 * a step of the schedule.
 */
export function createDeliveryProcessor(deps: DeliveryProcessorDeps) {
  return async function processDelivery(
    job: Job<DeliveryJobData>,
    token?: string,
  ): Promise<{ statusCode: number }> {
    const { messageId, endpointId } = job.data;
    const body = job.data.body ?? (await deps.bodies.get(messageId));
    if (body === undefined) {
      throw new UnrecoverableError(`message ${messageId} no longer exists (past its retention)`);
    }
    const outcome = await deps.attempt({
      messageId,
      endpointId,
      body,
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
        throw outcome.error;
      case 'failed':
        throw new UnrecoverableError(outcome.reason);
    }
  };
}
