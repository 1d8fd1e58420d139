import { Agent, errors as undiciErrors, request } from 'undici';
import { BlockedAddressError, PermanentDeliveryError, RetryableDeliveryError } from '../errors.js';
import type { AddressGuard } from './addressGuard.js';
import { parseRetryAfterMs } from './retrySchedule.js';

/** Most response bytes read from a receiver; the rest is dropped with the connection. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** How much of a failed response is kept in the attempt history. */
const ERROR_EXCERPT_BYTES = 512;

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

  async function post(delivery: DeliveryRequest): Promise<DeliveryResponse> {
    // Literal-IP hosts never reach `lookup`, so they are checked here; host names at connect.
    const url = guard.assertUrl(delivery.url);
    let response;
    try {
      response = await request(url, {
        method: 'POST',
        headers: delivery.headers,
        body: delivery.body,
        dispatcher: agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw classifyNetworkError(error, timeoutMs);
    }
    const { statusCode, headers, body } = response;
    let excerpt = '';
    try {
      excerpt = await readBounded(
        body,
        statusCode >= 200 && statusCode < 300 ? 0 : ERROR_EXCERPT_BYTES,
      );
    } catch {
      // The status line already decided the outcome; a body cut short or slow does not change it.
    }
    if (statusCode >= 200 && statusCode < 300) return { statusCode };
    const detail = `HTTP ${statusCode}${excerpt === '' ? '' : `: ${excerpt}`}`;
    if (statusCode === 410) {
      throw new PermanentDeliveryError(
        `${detail} (410 Gone: the receiver asked us to stop)`,
        statusCode,
      );
    }
    if (statusCode >= 300 && statusCode < 400) {
      throw new RetryableDeliveryError(`${detail} (redirects are not followed)`, statusCode);
    }
    const retryAfterMs =
      statusCode === 429 || statusCode === 503
        ? parseRetryAfterMs(headers['retry-after'])
        : undefined;
    throw new RetryableDeliveryError(detail, statusCode, retryAfterMs);
  }

  return {
    post,
    close: () => agent.close(),
  };
}

/** Reads up to `keepBytes` of text and drains at most MAX_RESPONSE_BYTES; beyond that the connection is dropped. */
async function readBounded(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  keepBytes: number,
): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let readBytes = 0;
  for await (const chunk of body) {
    readBytes += chunk.length;
    if (keptBytes < keepBytes) {
      const part = chunk.subarray(0, keepBytes - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
    if (readBytes > MAX_RESPONSE_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(kept).toString('utf8').replace(/\s+/g, ' ').trim();
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
  const message = cause instanceof Error ? cause.message : String(cause);
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
