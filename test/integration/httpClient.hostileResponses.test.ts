/**
 * Whatever a receiver sends back, the error an attempt records is readable text that PostgreSQL
 * takes: no NUL or other control character, no invalid UTF-8 or lone surrogate, bounded.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createAddressGuard } from '../../src/delivery/addressGuard.js';
import { createDeliveryClient } from '../../src/delivery/httpClient.js';
import { RetryableDeliveryError } from '../../src/errors.js';
import {
  HOSTILE_ANSWERS,
  startRawReceiver,
  type HostileAnswerName,
} from '../helpers/hostileReceivers.js';

const client = createDeliveryClient({
  timeoutMs: 2000,
  guard: createAddressGuard({ allowCidrs: ['127.0.0.0/8'] }),
});
afterAll(() => client.close());

/** Anything PostgreSQL's text type or a terminal would choke on. */
const UNSAFE = /[\p{Cc}\uD800-\uDFFF]/u;

async function errorFrom(name: HostileAnswerName): Promise<RetryableDeliveryError> {
  const receiver = await startRawReceiver(HOSTILE_ANSWERS[name]);
  try {
    const outcome = await client
      .post({ url: receiver.url, headers: { 'content-type': 'application/json' }, body: '{}' })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(outcome).toBeInstanceOf(RetryableDeliveryError);
    return outcome as RetryableDeliveryError;
  } finally {
    await receiver.close();
  }
}

describe('delivery client against hostile receivers', () => {
  it('replaces the NULs and controls of a 500 body in the error excerpt', async () => {
    const error = await errorFrom('nulBody');
    expect(error.statusCode).toBe(500);
    expect(error.message).toBe('HTTP 500: error\uFFFD detail\uFFFD with NULs\uFFFD');
  });

  it('replaces invalid UTF-8 in a 500 body with U+FFFD', async () => {
    const error = await errorFrom('invalidUtf8Body');
    expect(error.message).toMatch(/^HTTP 500: bad\uFFFD+\(\uFFFD+$/u);
    expect(error.message).not.toMatch(UNSAFE);
  });

  it('bounds the excerpt of a huge garbage body in bytes as well as characters', async () => {
    const error = await errorFrom('hugeGarbageBody');
    expect(error.message).toMatch(/^HTTP 500: \uFFFD/u);
    expect(error.message).not.toMatch(UNSAFE);
    expect(Buffer.byteLength(error.message)).toBeLessThanOrEqual(512 + 'HTTP 500: '.length);
  });

  it.each([
    ['notHttp', /does not match the HTTP\/1\.1 protocol/],
    ['reset', /ECONNRESET|other side closed/],
    ['oversizedHeader', /HEADERS_OVERFLOW/],
    ['controlCharsInStatusLine', /does not match the HTTP\/1\.1 protocol/],
  ] as const)(
    'records a readable network error when the receiver answers %s',
    async (name, why) => {
      const error = await errorFrom(name);
      expect(error.message).toMatch(why);
      expect(error.message.length).toBeLessThanOrEqual(600);
      expect(error.message).not.toMatch(UNSAFE);
    },
  );
});
