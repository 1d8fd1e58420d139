import { UnrecoverableError, type Job } from 'bullmq';
import { DeliveryError, PermanentDeliveryError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { EndpointCache } from './endpointCache.js';
import type { DeliveryClient } from './httpClient.js';
import { signatureHeader } from './signature.js';
import type { SuccessRecorder } from './successRecorder.js';
import type { EndpointRow } from '../db/schema.js';

export interface DeliveryProcessorDeps {
  endpoints: EndpointCache;
  client: DeliveryClient;
  recorder: SuccessRecorder;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Delays before each retry; a delivery makes at most `retryScheduleMs.length + 1` attempts. */
  retryScheduleMs: readonly number[];
}

const USER_AGENT = 'hookfleet/0.1 (+https://www.standardwebhooks.com)';

/**
 * Makes one attempt of a delivery job. Returns on 2xx; throws the RetryableDeliveryError back to
 * BullMQ (which waits as the backoff strategy says, then calls this again), or an
 * UnrecoverableError when the failure is permanent or the retry schedule has run out, which sends
 * the job to the failed set.
 */
export function createDeliveryProcessor(deps: DeliveryProcessorDeps) {
  return async function processDelivery(job: Job<DeliveryJobData>): Promise<{ statusCode: number }> {
    const { messageId, endpointId, body } = job.data;
    const attemptNumber = job.attemptsMade + 1;
    const isLastAttempt = job.attemptsMade >= deps.retryScheduleMs.length;
    const attemptedAt = new Date();
    const startedMs = performance.now();

    const settle = (outcome: 'succeeded' | 'retrying' | 'failed', statusCode?: number, error?: string) => {
      const durationMs = Math.round(performance.now() - startedMs);
      deps.recorder.record({ messageId, endpointId, attemptNumber, attemptedAt, outcome, statusCode, durationMs, error });
      deps.metrics?.attempts.inc({ outcome });
      deps.metrics?.attemptDuration.observe({ outcome }, durationMs / 1000);
      if (outcome !== 'retrying') {
        deps.metrics?.deliveries.inc({ outcome });
        deps.metrics?.attemptsPerDelivery.observe(attemptNumber);
      }
    };

    try {
      const endpoint = usableEndpoint(endpointId, await deps.endpoints.get(endpointId));
      const timestampSec = Math.floor(attemptedAt.getTime() / 1000);
      const { statusCode } = await deps.client.post({
        url: endpoint.url,
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': messageId,
          'webhook-timestamp': String(timestampSec),
          'webhook-signature': signatureHeader(signingSecrets(endpoint, attemptedAt), messageId, timestampSec, body),
        },
      });
      settle('succeeded', statusCode);
      return { statusCode };
    } catch (error) {
      if (!(error instanceof DeliveryError)) throw error; // e.g. PostgreSQL down: BullMQ retries the job.
      const final = !error.retryable || isLastAttempt;
      settle(final ? 'failed' : 'retrying', error.statusCode, error.message);
      if (!final) throw error;
      const reason = error.retryable ? `gave up after ${attemptNumber} attempts: ${error.message}` : error.message;
      deps.logger.info({ messageId, endpointId, attemptNumber, reason }, 'delivery failed');
      throw new UnrecoverableError(reason);
    }
  };
}

/** Deleted or disabled endpoints are not sent to; the job fails and can be replayed after re-enabling. */
function usableEndpoint(id: string, endpoint: EndpointRow | undefined): EndpointRow {
  if (!endpoint) throw new PermanentDeliveryError(`endpoint ${id} was deleted`);
  if (!endpoint.active) {
    const why = endpoint.deactivationReason ? ` (${endpoint.deactivationReason})` : '';
    throw new PermanentDeliveryError(`endpoint ${id} is disabled${why}`);
  }
  return endpoint;
}

/** The current secret, plus the previous one while a rotation's overlap lasts. */
function signingSecrets(endpoint: EndpointRow, now: Date): string[] {
  const { secret, previousSecret, previousSecretExpiresAt } = endpoint;
  return previousSecret && previousSecretExpiresAt && previousSecretExpiresAt > now ? [secret, previousSecret] : [secret];
}
