import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { DeliveryError, PermanentDeliveryError, RetryableDeliveryError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { EndpointCache } from './endpointCache.js';
import type { AttemptVerdict, EndpointLimits, Permit } from '../delivery/endpointLimits.js';
import type { DeliveryClient } from '../delivery/httpClient.js';
import { signatureHeader } from '../delivery/signature.js';
import type { SuccessRecorder } from './successRecorder.js';
import type { EndpointRow } from '../db/schema.js';

export interface DeliveryProcessorDeps {
  endpoints: EndpointCache;
  client: DeliveryClient;
  /** Per-endpoint in-flight cap and circuit breaker, shared through Redis. */
  limits: EndpointLimits;
  recorder: SuccessRecorder;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Delays before each retry; a delivery makes at most `retryScheduleMs.length + 1` attempts. */
  retryScheduleMs: readonly number[];
  /**
   * How long a delivery waits when its endpoint cannot be read (PostgreSQL unreachable and the row
   * not cached), plus up to half as much again of jitter. Default 2000.
   */
  lookupRetryMs?: number;
}

/** At most one warning per this interval about endpoint lookups failing, however many deliveries wait. */
const LOOKUP_WARNING_INTERVAL_MS = 10_000;

const USER_AGENT = 'hookfleet/0.1 (+https://www.standardwebhooks.com)';

/**
 * Makes one attempt of a delivery job. Returns on 2xx; throws the RetryableDeliveryError back to
 * BullMQ (which waits as the backoff strategy says, then calls this again), or an
 * UnrecoverableError when the failure is permanent or the retry schedule has run out, which sends
 * the job to the failed set.
 */
export function createDeliveryProcessor(deps: DeliveryProcessorDeps) {
  const lookupRetryMs = deps.lookupRetryMs ?? 2000;
  let lastLookupWarningMs = 0;
  // A delivery the circuit breaker holds back is postponed for free only while it is younger than
  // its whole retry schedule; after that each refusal counts as an attempt, so a delivery to an
  // endpoint that never recovers still ends in the failed set (replayable) instead of waiting forever.
  const scheduleSpanMs = deps.retryScheduleMs.reduce((sum, ms) => sum + ms, 0);
  // Deliveries this worker is processing; at zero the recorder need not wait for more to batch.
  let inFlight = 0;

  /**
   * The endpoint row, from the cache or PostgreSQL. When PostgreSQL cannot be reached the delivery
   * is postponed rather than failed (issue #7): the receiver did nothing wrong, so no attempt is
   * recorded against the endpoint, and moveToDelayed (which skips BullMQ's attempt count) keeps
   * the retry schedule untouched; a thrown error would have used up a step of it.
   */
  async function readEndpoint(
    job: Job<DeliveryJobData>,
    token: string | undefined,
  ): Promise<EndpointRow | undefined> {
    try {
      // The cache bounds its own wait for PostgreSQL (endpointCache.ts), so this cannot hang.
      return await deps.endpoints.get(job.data.endpointId);
    } catch (error) {
      if (token === undefined) throw error;
      const delayMs = Math.round(lookupRetryMs * (1 + Math.random() / 2));
      if (Date.now() - lastLookupWarningMs >= LOOKUP_WARNING_INTERVAL_MS) {
        lastLookupWarningMs = Date.now();
        deps.logger.warn(
          { err: error, delayMs },
          'endpoint lookup failed; deliveries of uncached endpoints are postponed',
        );
      }
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError(`endpoint lookup failed; delivery postponed by ${delayMs} ms`);
    }
  }

  async function deliver(
    job: Job<DeliveryJobData>,
    token: string | undefined,
  ): Promise<{ statusCode: number }> {
    const { messageId, endpointId, body } = job.data;
    const attemptNumber = job.attemptsMade + 1;
    const isLastAttempt = job.attemptsMade >= deps.retryScheduleMs.length;
    const attemptedAt = new Date();
    const startedMs = performance.now();

    const settle = (
      outcome: 'succeeded' | 'retrying' | 'failed',
      statusCode?: number,
      error?: string,
    ) => {
      const durationMs = Math.round(performance.now() - startedMs);
      deps.recorder.record({
        messageId,
        endpointId,
        attemptNumber,
        attemptedAt,
        outcome,
        statusCode,
        durationMs,
        error,
      });
      deps.metrics?.attempts.inc({ outcome });
      deps.metrics?.attemptDuration.observe({ outcome }, durationMs / 1000);
      if (outcome !== 'retrying') {
        deps.metrics?.deliveries.inc({ outcome });
        deps.metrics?.attemptsPerDelivery.observe(attemptNumber);
      }
    };

    const row = await readEndpoint(job, token);
    let verdict: AttemptVerdict = 'none';
    let permit: Permit | undefined;
    try {
      const endpoint = usableEndpoint(endpointId, row);
      const admission = await deps.limits.admit(endpointId, job.id);
      if (!admission.admitted) {
        const free =
          admission.reason === 'endpoint_busy' || Date.now() - job.timestamp < scheduleSpanMs;
        if (free && token !== undefined) {
          // Not an attempt: nothing was sent, so neither the schedule nor the history moves.
          await job.moveToDelayed(Date.now() + admission.retryInMs, token);
          throw new DelayedError(
            `${admission.reason}: delivery postponed by ${admission.retryInMs} ms`,
          );
        }
        throw new RetryableDeliveryError(
          'not sent: the endpoint circuit is open after repeated failures',
        );
      }
      permit = admission.permit;
      const timestampSec = Math.floor(attemptedAt.getTime() / 1000);
      const { statusCode } = await deps.client.post({
        url: endpoint.url,
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': messageId,
          'webhook-timestamp': String(timestampSec),
          'webhook-signature': signatureHeader(
            signingSecrets(endpoint, attemptedAt),
            messageId,
            timestampSec,
            body,
          ),
        },
      });
      verdict = 'succeeded';
      settle('succeeded', statusCode);
      return { statusCode };
    } catch (error) {
      if (!(error instanceof DeliveryError)) throw error; // a bug, not a receiver's doing: BullMQ retries the job
      // Timeouts, refused connections, 5xx and 429 count against the endpoint's circuit; a
      // permanent failure (410, an address the guard refuses) already ends each delivery at once.
      if (permit && error.retryable) verdict = 'failed';
      const final = !error.retryable || isLastAttempt;
      settle(final ? 'failed' : 'retrying', error.statusCode, error.message);
      if (!final) throw error;
      const reason = error.retryable
        ? `gave up after ${attemptNumber} attempts: ${error.message}`
        : error.message;
      deps.logger.info({ messageId, endpointId, attemptNumber, reason }, 'delivery failed');
      throw new UnrecoverableError(reason);
    } finally {
      if (permit) await deps.limits.release(permit, verdict);
    }
  }

  return async function processDelivery(
    job: Job<DeliveryJobData>,
    token?: string,
  ): Promise<{ statusCode: number }> {
    inFlight += 1;
    try {
      return await deliver(job, token);
    } finally {
      inFlight -= 1;
      if (inFlight === 0) deps.recorder.idle();
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
  return previousSecret && previousSecretExpiresAt && previousSecretExpiresAt > now
    ? [secret, previousSecret]
    : [secret];
}
