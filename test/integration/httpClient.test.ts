import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PermanentDeliveryError, RetryableDeliveryError } from '../../src/errors.js';
import { createAddressGuard } from '../../src/delivery/addressGuard.js';
import { createDeliveryClient, MAX_RESPONSE_BYTES } from '../../src/delivery/httpClient.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

const TIMEOUT_MS = 400;
const client = createDeliveryClient({
  timeoutMs: TIMEOUT_MS,
  guard: createAddressGuard({ allowCidrs: ['127.0.0.0/8'] }),
});
let receiver: Receiver | undefined;
const timers: NodeJS.Timeout[] = [];

afterEach(async () => {
  timers.splice(0).forEach(clearInterval);
  await receiver?.close();
  receiver = undefined;
});
afterAll(() => client.close());

async function post(respond: (res: ServerResponse) => void) {
  receiver = await startReceiver((_request, _index, res) => respond(res));
  return client.post({
    url: `${receiver.url}?x=1`, // receiver.url ends in /hook
    headers: { 'content-type': 'application/json' },
    body: '{"a":1}',
  });
}

/** The rejection of `promise`, which must reject. */
async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the attempt to fail');
    },
    (error: unknown) => error,
  );
}

describe('delivery client', () => {
  it('sends the body and headers to the path and query, and resolves on 2xx', async () => {
    await expect(post((res) => res.writeHead(201).end('created'))).resolves.toEqual({
      statusCode: 201,
    });
    expect(receiver!.requests[0]).toMatchObject({
      method: 'POST',
      path: '/hook?x=1',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json', 'content-length': '7' },
    });
  });

  it('keeps the first 512 bytes of a failed response, whitespace folded, in the error', async () => {
    const error = await failureOf(
      post((res) => res.writeHead(500).end(`oops\n\n  went   wrong ${'z'.repeat(2000)}`)),
    );
    expect(error).toBeInstanceOf(RetryableDeliveryError);
    const message = (error as Error).message;
    expect(message).toMatch(/^HTTP 500: oops went wrong z+$/);
    expect(message.length).toBeLessThan(512 + 'HTTP 500: '.length);
    expect((error as RetryableDeliveryError).statusCode).toBe(500);
  });

  it('ends delivery for good on 410 and does not follow a redirect', async () => {
    expect(await failureOf(post((res) => res.writeHead(410).end()))).toBeInstanceOf(
      PermanentDeliveryError,
    );
    const redirect = await failureOf(
      post((res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end()),
    );
    expect(redirect).toBeInstanceOf(RetryableDeliveryError);
    expect((redirect as Error).message).toContain('redirects are not followed');
  });

  it('passes on Retry-After of a 429', async () => {
    const error = await failureOf(
      post((res) => res.writeHead(429, { 'retry-after': '7' }).end('slow down')),
    );
    expect(error).toMatchObject({ statusCode: 429, retryAfterMs: 7000 });
  });

  it('stops reading an endless 2xx body past the response limit, long before the timeout', async () => {
    const startedMs = performance.now();
    const outcome = await post((res) => {
      res.writeHead(200);
      const chunk = 'y'.repeat(16 * 1024);
      timers.push(setInterval(() => res.write(chunk), 1));
    });
    expect(outcome).toEqual({ statusCode: 200 });
    expect(performance.now() - startedMs).toBeLessThan(TIMEOUT_MS);
    expect(MAX_RESPONSE_BYTES).toBe(64 * 1024);
  });

  it('times out a receiver that never answers within one sweep after the budget', async () => {
    const startedMs = performance.now();
    const error = await failureOf(
      post(() => {
        /* never answers */
      }),
    );
    const elapsedMs = performance.now() - startedMs;
    expect(error).toBeInstanceOf(RetryableDeliveryError);
    expect((error as Error).message).toBe(`timed out after ${TIMEOUT_MS} ms`);
    expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS * 2);
  });

  it('rejects, never throws, when the guard refuses a literal address', async () => {
    let pending: Promise<unknown> | undefined;
    expect(() => {
      pending = client.post({ url: 'http://10.0.0.1/hook', headers: {}, body: '' });
    }).not.toThrow();
    await expect(pending).rejects.toBeInstanceOf(PermanentDeliveryError);
  });

  it('reports a refused connection as retryable, with its code', async () => {
    receiver = await startReceiver();
    const url = `${receiver.url}/gone`;
    await receiver.close();
    receiver = undefined;
    const error = await failureOf(client.post({ url, headers: {}, body: '' }));
    expect(error).toBeInstanceOf(RetryableDeliveryError);
    expect((error as Error).message).toContain('ECONNREFUSED');
  });
});
