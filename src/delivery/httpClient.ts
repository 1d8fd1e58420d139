import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { BlockedAddressError, PermanentDeliveryError, RetryableDeliveryError } from '../errors.js';
import { readableText } from '../readableText.js';
import type { AddressGuard } from './addressGuard.js';
import { parseRetryAfterMs } from './retrySchedule.js';

/** Most response bytes read from a receiver; the rest is dropped with the connection. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/**
 * How much of a failed response is kept in the attempt history: the bytes read, and the bound of
 * the readable excerpt made of them (invalid bytes become U+FFFD, three bytes each, so garbage
 * would otherwise triple), in characters and in UTF-8 bytes.
 */
const ERROR_EXCERPT_BYTES = 512;
/**
 * Endpoint URLs whose check is remembered; past it the memory starts again (a few MB at most). As
 * many as the endpoint cache keeps rows: a fleet with more endpoints than this re-checked every
 * URL at each clear.
 */
const MAX_KNOWN_TARGETS = 50_000;
/** Most characters kept of a network error's message (undici's and Node's are short). */
const NETWORK_ERROR_CHARS = 256;

export interface DeliveryClientOptions {
  /** Budget for the whole attempt: connect, headers and body. */
  timeoutMs: number;
  guard: AddressGuard;
  /**
   * Open connections per receiver origin. Default: no cap of its own, so the worker's concurrency
   * is the bound (a cap below it left deliveries to one busy origin waiting for a socket).
   */
  connectionsPerOrigin?: number;
}

export interface DeliveryRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface DeliveryResponse {
  statusCode: number;
}

export interface DeliveryClient {
  /** POSTs once. Resolves on 2xx; otherwise throws a RetryableDeliveryError or PermanentDeliveryError. */
  post(delivery: DeliveryRequest): Promise<DeliveryResponse>;
  close(): Promise<void>;
}

/**
 * The HTTP side of a delivery, on undici: one keep-alive pool per receiver origin, the address
 * guard's `lookup` on every new connection (so the address connected to is the address checked),
 * no redirects followed, and a response read of at most MAX_RESPONSE_BYTES.
 *
 * Requests go through undici's `dispatch` with a handler of our own rather than `request()`: the
 * response body is counted and (for a failure) excerpted as it arrives, with no body stream, and
 * the attempt's budget is enforced by one periodic sweep over the attempts in flight instead of
 * an AbortSignal and a timer per attempt (both showed in the worker's profile).
 */
export function createDeliveryClient(options: DeliveryClientOptions): DeliveryClient {
  const { timeoutMs, guard } = options;
  const agent = new Agent({
    connect: { lookup: guard.lookup, timeout: timeoutMs },
    connections: options.connectionsPerOrigin ?? null,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 4_000,
    // Bounds what a hostile receiver can make us buffer before we even look at the body.
    maxHeaderSize: 16 * 1024,
  });
  const deadlines = createDeadlineSweep(timeoutMs);
  // The guard's verdict on a URL's text depends on that text and the allow-list alone, so an
  // allowed URL is parsed and checked once, not at every attempt (2% of a worker's CPU in the
  // broadcast benchmark). Host names are still checked at every connection, by `lookup`.
  const allowedTargets = new Map<string, { origin: string; path: string }>();

  function target(text: string): { origin: string; path: string } {
    let known = allowedTargets.get(text);
    if (known === undefined) {
      // Literal-IP hosts never reach `lookup`, so they are checked here; host names at connect.
      const url = guard.assertUrl(text);
      known = { origin: url.origin, path: `${url.pathname}${url.search}` };
      if (allowedTargets.size >= MAX_KNOWN_TARGETS) allowedTargets.clear();
      allowedTargets.set(text, known);
    }
    return known;
  }

  // async, so that the guard's refusal below is a rejection like every other outcome, never a throw.
  async function post(delivery: DeliveryRequest): Promise<DeliveryResponse> {
    const url = target(delivery.url);
    return new Promise<DeliveryResponse>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let statusCode = 0;
      let retryAfter: string | string[] | undefined;
      let keepBytes = 0;
      const kept: Buffer[] = [];
      let keptBytes = 0;
      let readBytes = 0;
      let settled = false;

      // The status line decides the outcome; a body cut short, too long or too slow does not change it.
      const settle = (networkError?: unknown) => {
        if (settled) return;
        settled = true;
        deadlines.remove(attempt);
        if (statusCode === 0) {
          reject(classifyNetworkError(networkError, timeoutMs));
          return;
        }
        if (statusCode >= 200 && statusCode < 300) {
          resolve({ statusCode });
          return;
        }
        // The body is the receiver's bytes: NULs, control characters, invalid UTF-8 (PostgreSQL
        // refuses a NUL in text, and a refused row used to stop outcome recording).
        const excerpt = readableText(Buffer.concat(kept), {
          maxChars: ERROR_EXCERPT_BYTES,
          maxBytes: ERROR_EXCERPT_BYTES,
        });
        reject(failureOf(statusCode, excerpt, retryAfter));
      };
      const attempt = deadlines.add(() => {
        controller?.abort(new TimeoutError());
        settle(new TimeoutError());
      });

      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          // The budget ran out while the connection was being made.
          if (settled) c.abort(new TimeoutError());
        },
        onResponseStart(_c, code, headers) {
          if (code < 200) return; // 1xx: the real status follows
          statusCode = code;
          retryAfter = headers['retry-after'];
          keepBytes = code >= 300 ? ERROR_EXCERPT_BYTES : 0;
        },
        onResponseData(c, chunk) {
          readBytes += chunk.length;
          if (keptBytes < keepBytes) {
            const part = chunk.subarray(0, keepBytes - keptBytes);
            kept.push(part);
            keptBytes += part.length;
          }
          if (readBytes > MAX_RESPONSE_BYTES) {
            c.abort(new Error('response too large'));
            settle();
          }
        },
        onResponseEnd() {
          settle();
        },
        onResponseError(_c, error) {
          settle(error);
        },
      };
      try {
        agent.dispatch(
          {
            origin: url.origin,
            path: url.path,
            method: 'POST',
            headers: delivery.headers,
            body: delivery.body,
          },
          handler,
        );
      } catch (error) {
        settle(error);
      }
    });
  }

  return {
    post,
    close: async () => {
      // Attempts still in flight keep their budget while the agent waits for them to end.
      await agent.close();
      deadlines.stop();
    },
  };
}

/** For a status other than 2xx: the error that decides whether the delivery is retried. */
function failureOf(
  statusCode: number,
  excerpt: string,
  retryAfter: string | string[] | undefined,
): PermanentDeliveryError | RetryableDeliveryError {
  const detail = `HTTP ${statusCode}${excerpt === '' ? '' : `: ${excerpt}`}`;
  if (statusCode === 410) {
    return new PermanentDeliveryError(
      `${detail} (410 Gone: the receiver asked us to stop)`,
      statusCode,
    );
  }
  if (statusCode >= 300 && statusCode < 400) {
    return new RetryableDeliveryError(`${detail} (redirects are not followed)`, statusCode);
  }
  const retryAfterMs =
    statusCode === 429 || statusCode === 503 ? parseRetryAfterMs(retryAfter) : undefined;
  return new RetryableDeliveryError(detail, statusCode, retryAfterMs);
}

class TimeoutError extends Error {
  override name = 'TimeoutError';
}

interface DeadlineSweep {
  /** Calls `expire` once the budget has passed, unless removed first. */
  add(expire: () => void): object;
  remove(entry: object): void;
  stop(): void;
}

/**
 * Attempts in flight in start order, so their deadlines are in order too: a sweep every
 * `timeoutMs / 10` (10-250 ms) expires the late ones from the front. An attempt therefore ends
 * within one sweep interval after its budget.
 */
function createDeadlineSweep(timeoutMs: number): DeadlineSweep {
  const intervalMs = Math.max(10, Math.min(250, Math.round(timeoutMs / 10)));
  // Insertion-ordered; removal is O(1), and deadlines grow with insertion order.
  const pending = new Map<object, { deadlineMs: number; expire: () => void }>();
  let timer: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = performance.now();
    for (const [entry, { deadlineMs, expire }] of pending) {
      if (deadlineMs > now) break;
      pending.delete(entry);
      expire();
    }
    if (pending.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    add(expire) {
      const entry = {};
      pending.set(entry, { deadlineMs: performance.now() + timeoutMs, expire });
      if (!timer) {
        timer = setInterval(sweep, intervalMs);
        timer.unref();
      }
      return entry;
    },
    remove(entry) {
      pending.delete(entry);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

function classifyNetworkError(error: unknown, timeoutMs: number): Error {
  const cause = findCause(error);
  if (cause instanceof BlockedAddressError || cause instanceof PermanentDeliveryError) return cause;
  if (
    cause instanceof undiciErrors.ConnectTimeoutError ||
    cause instanceof undiciErrors.HeadersTimeoutError ||
    cause instanceof undiciErrors.BodyTimeoutError ||
    (cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError'))
  ) {
    return new RetryableDeliveryError(`timed out after ${timeoutMs} ms`);
  }
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  // A parser's message may quote what the receiver sent; it is kept readable and short.
  const message = readableText(cause instanceof Error ? cause.message : String(cause), {
    maxChars: NETWORK_ERROR_CHARS,
  });
  return new RetryableDeliveryError(code === undefined ? message : `${code}: ${message}`);
}

/** undici wraps connect errors; the guard's own error may sit one or two `cause`s down. */
function findCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    if (current instanceof PermanentDeliveryError) return current;
    if (current.cause === undefined) break;
    current = current.cause;
  }
  return current instanceof PermanentDeliveryError ? current : error;
}
