/**
 * Typed errors, one vocabulary for every side (unavailable.ts adds the ones that say Redis or
 * PostgreSQL cannot be reached). The delivery errors decide what the worker does next: a
 * RetryableDeliveryError is thrown back to BullMQ, which schedules the next attempt from the
 * retry schedule (or the receiver's Retry-After); a PermanentDeliveryError is turned into
 * BullMQ's UnrecoverableError so the job goes straight to the failed set, where it can be
 * inspected and replayed. A HookfleetError is what API, command-line and library callers see.
 */

/** A setting is missing or malformed; the process must not start. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Shared shape of a failed delivery attempt, as recorded in the attempt history. */
export abstract class DeliveryError extends Error {
  abstract readonly retryable: boolean;
  constructor(
    message: string,
    /** HTTP status the receiver answered with, when it answered at all. */
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

/**
 * The attempt failed for a reason that may pass: timeout, connection refused, 5xx, 429, a 3xx
 * (redirects are not followed). The worker retries it with backoff.
 */
export class RetryableDeliveryError extends DeliveryError {
  override name = 'RetryableDeliveryError';
  readonly retryable = true;
  constructor(
    message: string,
    statusCode?: number,
    /** From the receiver's Retry-After header (429/503); the next attempt waits at least this. */
    readonly retryAfterMs?: number,
  ) {
    super(message, statusCode);
  }

  /**
   * Set by the attempt from the endpoint's retry schedule (and Retry-After): how long BullMQ's
   * backoff waits before the next attempt. Unset: the default schedule decides.
   */
  retryInMs?: number;
}

/**
 * Retrying cannot help: 410 Gone, an invalid URL, an address the guard refuses, an endpoint that
 * was deactivated or deleted. The worker ends the job at once (it lands in the failed set).
 */
export class PermanentDeliveryError extends DeliveryError {
  override name = 'PermanentDeliveryError';
  readonly retryable = false;
}

/** The statuses the API answers errors with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 503;

/** One problem with one input field, listed in a validation error. */
export interface FieldProblem {
  path: string;
  message: string;
}

/**
 * An error with a stable machine-readable code, shown to API, command-line and library callers.
 * The API answers it as `{code, detail, fields?}` with `status` and `headers` (api/httpErrors.ts);
 * the command line turns its code into an exit code (cli/exitCodes.ts).
 */
export class HookfleetError extends Error {
  override name = 'HookfleetError';
  constructor(
    /** Stable code, e.g. `validation_failed`, `not_found`, `idempotency_conflict`. */
    readonly code: string,
    message: string,
    /** HTTP status the API answers with. Default 400. */
    readonly status: ErrorStatus = 400,
    /** Per-field problems for validation errors. */
    readonly fields?: readonly FieldProblem[],
    /** Response headers the API adds, e.g. Retry-After on a 503. */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
  }
}

/**
 * The address guard refused the destination: a private, loopback, link-local, metadata or other
 * special-purpose address (see delivery/addressGuard.ts). Permanent: the worker never retries it,
 * and the API refuses to register such a URL (422).
 */
export class BlockedAddressError extends PermanentDeliveryError {
  override name = 'BlockedAddressError';
}
