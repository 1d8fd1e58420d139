/**
 * One attempt of one delivery (message, endpoint, attempt number): the step a fan-out and a
 * delivery job share. It reads the endpoint, asks the endpoint limits, takes one of the worker's
 * attempt slots, signs and POSTs the body, records the outcome (success recorder, metrics) and
 * says what should happen next; the caller decides how (a fan-out adds a delivery job, a
 * delivery job moves itself).
 *
 *   endpoint unreadable (PostgreSQL down, row not cached) -> postponed, nothing recorded
 *   limits refuse (busy, circuit open)                    -> postponed, nothing recorded
 *                                                            (an attempt once the delivery is older
 *                                                            than its whole retry schedule)
 *   2xx                                                   -> succeeded
 *   retryable failure, schedule not run out               -> retry (recorded 'retrying')
 *   permanent failure, or the schedule has run out        -> failed (recorded 'failed')
 *   ... and 410 Gone                                      -> the endpoint is disabled (`gone`)
 *   ... and the schedule has run out                      -> message.attempt.exhausted
 */
import { DeliveryError, PermanentDeliveryError, RetryableDeliveryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { EndpointCache } from './endpointCache.js';
import type { AttemptVerdict, EndpointLimits, Permit } from '../delivery/endpointLimits.js';
import type { DeliveryClient } from '../delivery/httpClient.js';
import type { MessageContent } from '../delivery/envelope.js';
import { retryDelayMs } from '../delivery/retrySchedule.js';
import { signatureHeader } from '../delivery/signature.js';
import type { SuccessRecorder } from './successRecorder.js';
import type { EndpointRow } from '../db/schema.js';
import type { AttemptSlots } from './attemptSlots.js';
import type { DeliveryFailureEvents } from './deliveryFailureEvents.js';
import { OPERATOR_ENDPOINT_ID } from '../db/operatorMessages.js';
import type { DeliveriesSending } from '../delivery/deliveriesSending.js';

export interface DeliveryAttemptDeps {
  endpoints: EndpointCache;
  client: DeliveryClient;
  /**
   * Client for the operator's endpoint only, whose address guard also allows
   * HOOKFLEET_OPERATOR_ALLOW_CIDRS. Default: `client`.
   */
  operatorClient?: DeliveryClient | undefined;
  /** Disables endpoints that answer 410 and reports exhausted deliveries. Default: neither. */
  failures?: DeliveryFailureEvents | undefined;
  /** Per-endpoint in-flight cap and circuit breaker, shared through Redis. */
  limits: EndpointLimits;
  /** Shows attempts that have been sending a while as `in_flight`. Default: none shown. */
  sending?: DeliveriesSending | undefined;
  /** HTTP attempts in flight in this process, shared by fan-outs and delivery jobs. */
  slots: AttemptSlots;
  recorder: SuccessRecorder;
  logger: Logger;
  metrics?: Metrics | undefined;
  /**
   * Delays before each retry of endpoints without a schedule of their own; a delivery makes at
   * most `retryScheduleMs.length + 1` attempts.
   */
  retryScheduleMs: readonly number[];
  /**
   * How long a delivery waits when its endpoint cannot be read (PostgreSQL unreachable and the row
   * not cached), plus up to half as much again of jitter. Default 2000.
   */
  lookupRetryMs?: number;
}

export interface AttemptRequest {
  messageId: string;
  endpointId: string;
  /** The payload; the endpoint's payload format picks the exact bytes to sign and send. */
  content: MessageContent;
  /** 1 for the first attempt of the delivery. */
  attemptNumber: number;
  /** The delivery's job id (deterministic), which the circuit breaker remembers to send it early. */
  jobId: string;
  /** When the delivery was first enqueued (ms since epoch). */
  enqueuedAtMs: number;
  /** False when the caller cannot postpone (no job lock): a refusal then counts as an attempt. */
  canPostpone: boolean;
  /** Called when the request goes out (after the endpoint limits admitted it). */
  onSending?: () => void;
  /**
   * A slot the caller already took (a fan-out takes one before starting each attempt, so it never
   * has more attempts started than slots); released when the attempt ends. Default: one is taken.
   */
  slot?: () => void;
}

export type AttemptOutcome =
  | { kind: 'succeeded'; statusCode: number }
  /** Nothing was sent and nothing recorded: try again after `delayMs` without using a retry. */
  | { kind: 'postponed'; delayMs: number; reason: string }
  /** Recorded as 'retrying'; the next attempt waits `delayMs`: the endpoint's schedule (or Retry-After). */
  | { kind: 'retry'; error: RetryableDeliveryError; delayMs: number }
  /** Recorded as 'failed': no further attempt, the delivery is in the failed list. */
  | { kind: 'failed'; reason: string };

/** At most one warning per this interval about endpoint lookups failing, however many deliveries wait. */
const LOOKUP_WARNING_INTERVAL_MS = 10_000;

const USER_AGENT = 'hookfleet/0.1 (+https://www.standardwebhooks.com)';

export type DeliveryAttempt = (request: AttemptRequest) => Promise<AttemptOutcome>;

/** Makes attempts; an error other than a DeliveryError (a bug) is thrown to the caller. */
export function createDeliveryAttempt(deps: DeliveryAttemptDeps): DeliveryAttempt {
  const lookupRetryMs = deps.lookupRetryMs ?? 2000;
  let lastLookupWarningMs = 0;
  const defaultSpanMs = spanMs(deps.retryScheduleMs);
  // Attempts this worker is making; at zero the recorder need not wait for more to batch.
  let inFlight = 0;

  /**
   * The endpoint row, from the cache or PostgreSQL; undefined with a delay when PostgreSQL cannot
   * be reached: the receiver did nothing wrong, so the delivery is postponed rather than failed,
   * with no attempt recorded against the endpoint and its retry schedule untouched.
   */
  async function readEndpoint(
    request: AttemptRequest,
  ): Promise<{ row: EndpointRow | undefined } | { delayMs: number }> {
    try {
      // The cache bounds its own wait for PostgreSQL (endpointCache.ts), so this cannot hang.
      const row = await deps.endpoints.get(request.endpointId);
      if (row?.active) return { row };
      // A disabled or missing row fails the delivery for good, so it must be the row as it is
      // now: the cached one may predate a re-enabling (or the endpoint's creation) whose change
      // notification has not arrived yet. One read more per delivery that fails this way.
      return { row: await deps.endpoints.fresh(request.endpointId) };
    } catch (error) {
      if (!request.canPostpone) throw error;
      const delayMs = Math.round(lookupRetryMs * (1 + Math.random() / 2));
      if (Date.now() - lastLookupWarningMs >= LOOKUP_WARNING_INTERVAL_MS) {
        lastLookupWarningMs = Date.now();
        deps.logger.warn(
          { err: error, delayMs },
          'endpoint lookup failed; deliveries of uncached endpoints are postponed',
        );
      }
      return { delayMs };
    }
  }

  async function attempt(request: AttemptRequest): Promise<AttemptOutcome> {
    const { messageId, endpointId, attemptNumber } = request;
    // Until the endpoint is read (a deleted one fails permanently anyway), the default schedule.
    let schedule = deps.retryScheduleMs;
    let attemptedAt = new Date();
    let startedMs = performance.now();

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

    const read = await readEndpoint(request);
    if ('delayMs' in read) {
      return { kind: 'postponed', delayMs: read.delayMs, reason: 'endpoint lookup failed' };
    }
    let verdict: AttemptVerdict = 'none';
    let permit: Permit | undefined;
    let endpoint: EndpointRow | undefined;
    let sent: (() => void) | undefined;
    try {
      endpoint = usableEndpoint(endpointId, read.row);
      if (endpoint.retryScheduleMs !== null) schedule = endpoint.retryScheduleMs;
      // A delivery the circuit breaker holds back is postponed for free only while it is younger
      // than its whole retry schedule; after that each refusal counts as an attempt, so a delivery
      // to an endpoint that never recovers still ends in the failed set (replayable) instead of
      // waiting forever.
      const scheduleSpanMs =
        endpoint.retryScheduleMs === null ? defaultSpanMs : spanMs(endpoint.retryScheduleMs);
      const admission = await deps.limits.admit(
        endpointId,
        request.jobId,
        endpoint.rateLimitPerSecond,
      );
      if (!admission.admitted) {
        const free =
          admission.reason !== 'circuit_open' || Date.now() - request.enqueuedAtMs < scheduleSpanMs;
        if (free && request.canPostpone) {
          // Not an attempt: nothing was sent, so neither the schedule nor the history moves.
          return { kind: 'postponed', delayMs: admission.retryInMs, reason: admission.reason };
        }
        throw new RetryableDeliveryError(
          'not sent: the endpoint circuit is open after repeated failures',
        );
      }
      permit = admission.permit;
      request.onSending?.();
      attemptedAt = new Date();
      startedMs = performance.now();
      const timestampSec = Math.floor(attemptedAt.getTime() / 1000);
      const body = request.content.body(endpoint.payloadFormat);
      const client =
        endpoint.id === OPERATOR_ENDPOINT_ID ? (deps.operatorClient ?? deps.client) : deps.client;
      sent = deps.sending?.started(messageId, endpointId);
      const { statusCode } = await client.post({
        url: endpoint.url,
        body,
        headers: {
          // The endpoint's own first, so nothing can replace the signature headers (and the
          // names that could are refused when they are set, see delivery/endpointHeaders.ts).
          ...endpoint.headers,
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
      return { kind: 'succeeded', statusCode };
    } catch (error) {
      if (!(error instanceof DeliveryError)) throw error; // a bug, not a receiver's doing
      // Timeouts, refused connections, 5xx and 429 count against the endpoint's circuit; a
      // permanent failure (410, an address the guard refuses) already ends each delivery at once.
      if (permit && error.retryable) verdict = 'failed';
      const delayMs = error.retryable
        ? retryDelayMs(schedule, attemptNumber, (error as RetryableDeliveryError).retryAfterMs)
        : undefined;
      const final = delayMs === undefined;
      settle(final ? 'failed' : 'retrying', error.statusCode, error.message);
      if (!final) return { kind: 'retry', error: error as RetryableDeliveryError, delayMs };
      const reason = error.retryable
        ? `gave up after ${attemptNumber} attempts: ${error.message}`
        : error.message;
      deps.logger.info({ messageId, endpointId, attemptNumber, reason }, 'delivery failed');
      if (endpoint && deps.failures) {
        if (error.statusCode === 410) await deps.failures.gone(endpoint, messageId, error.message);
        else if (error.retryable)
          await deps.failures.exhausted(endpoint, messageId, attemptNumber, reason);
      }
      return { kind: 'failed', reason };
    } finally {
      sent?.();
      if (permit) await deps.limits.release(permit, verdict);
    }
  }

  return async function deliveryAttempt(request) {
    // Held from the endpoint read to the release of the limits: a refusal frees it in a round trip.
    const release = request.slot ?? (await deps.slots.acquire());
    inFlight += 1;
    try {
      return await attempt(request);
    } finally {
      release();
      inFlight -= 1;
      if (inFlight === 0) deps.recorder.idle();
    }
  };
}

const spanMs = (scheduleMs: readonly number[]) => scheduleMs.reduce((sum, ms) => sum + ms, 0);

/** Deleted or disabled endpoints are not sent to; the delivery fails and can be replayed after re-enabling. */
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
