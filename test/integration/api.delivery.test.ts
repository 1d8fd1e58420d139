import { setTimeout as delay } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createdEndpointSchema,
  messageSchema,
  redeliverResponse,
  rotatedSecretSchema,
  sendMessageResponse,
  type MessageView,
} from '../../src/api/contracts.js';
import type { ReceivedRequest } from '../helpers/receiver.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

// A real worker delivers; the success recorder writes attempts every 25 ms.
let api: ApiHarness;
let receiver: Receiver | undefined;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_RECORDER_FLUSH_MS: '25' });
  api.fleet.startWorker();
});
afterAll(async () => {
  await api.close();
});
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

async function register(url: string) {
  const res = await api.call('POST', '/v1/endpoints', { body: { url } });
  expect(res.status, res.text).toBe(201);
  return createdEndpointSchema.parse(res.body);
}

async function sendTo(endpointId: string, payload: unknown) {
  const res = await api.call('POST', '/v1/messages', {
    body: { eventType: 'api.e2e', payload, endpointIds: [endpointId] },
  });
  expect(res.status, res.text).toBe(202);
  return sendMessageResponse.parse(res.body);
}

/**
 * Reads the message through the API until `done` holds. Attempts reach PostgreSQL in the
 * recorder's batches, so this polls, bounded: at most 200 reads, one per flush interval.
 */
async function pollMessage(
  id: string,
  done: (message: MessageView) => boolean,
): Promise<MessageView> {
  let message: MessageView | undefined;
  for (let read = 0; read < 200; read++) {
    const res = await api.call('GET', `/v1/messages/${id}`);
    message = messageSchema.parse(res.body);
    if (done(message)) return message;
    await delay(api.fleet.config.recorderFlushMs);
  }
  throw new Error(`message ${id} never reached the expected state: ${JSON.stringify(message)}`);
}

function signedHeaders(request: ReceivedRequest) {
  return {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  };
}

describe('a message sent over HTTP', () => {
  it('is delivered to the receiver by a worker, and its attempt shows in GET /v1/messages/:id', async () => {
    receiver = await startReceiver();
    const endpoint = await register(receiver.url);
    const sent = await sendTo(endpoint.id, { order: 42 });

    const [request] = await receiver.waitForRequests(1);
    expect(request!.headers['webhook-id']).toBe(sent.id);
    expect(new Webhook(endpoint.secret).verify(request!.body, signedHeaders(request!))).toEqual({
      type: 'api.e2e',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      data: { order: 42 },
    });

    const message = await pollMessage(sent.id, (m) => m.deliveries[0]?.status === 'succeeded');
    const [delivery] = message.deliveries;
    expect(delivery?.endpointId).toBe(endpoint.id);
    expect(delivery?.attempts).toHaveLength(1);
    expect(delivery?.attempts[0]).toMatchObject({
      attemptNumber: 1,
      outcome: 'succeeded',
      statusCode: 204,
      error: null,
    });

    const health = await api.call('GET', `/v1/endpoints/${endpoint.id}`);
    expect(health.body).toMatchObject({ successCount: 1, consecutiveFailures: 0 });
    expect(health.body.lastSuccessAt).not.toBeNull();
  });

  it('is delivered again after a permanent failure when redelivered', async () => {
    receiver = await startReceiver((_req, index, res) => {
      res.writeHead(index === 0 ? 410 : 204).end();
    });
    const endpoint = await register(receiver.url);
    const sent = await sendTo(endpoint.id, { again: true });
    await pollMessage(sent.id, (m) => m.deliveries[0]?.status === 'failed');

    const res = await api.call('POST', `/v1/messages/${sent.id}/redeliver`);
    // The first attempt was the fan-out's, so the delivery had no job to retry: a new one is added.
    expect(redeliverResponse.parse(res.body).redeliveries[0]?.action).toBe('enqueued');
    const [, second] = await receiver.waitForRequests(2);
    expect(second!.headers['webhook-id']).toBe(sent.id);
    const message = await pollMessage(sent.id, (m) => m.deliveries[0]?.status === 'succeeded');
    expect(message.deliveries[0]?.attempts.map((a) => [a.outcome, a.statusCode])).toEqual([
      ['failed', 410],
      ['succeeded', 204],
    ]);
  });

  it('POST /v1/endpoints/:id/test reaches the receiver', async () => {
    receiver = await startReceiver();
    const endpoint = await register(receiver.url);
    const res = await api.call('POST', `/v1/endpoints/${endpoint.id}/test`);
    expect(res.status).toBe(202);
    const [request] = await receiver.waitForRequests(1);
    expect(JSON.parse(request!.body)).toMatchObject({
      type: 'hookfleet.test',
      data: { type: 'hookfleet.test', endpointId: endpoint.id },
    });
  });
});

describe('rotate-secret', () => {
  it('signs deliveries with both secrets during the overlap, so receivers knowing either one verify', async () => {
    receiver = await startReceiver();
    const endpoint = await register(receiver.url);
    const rotate = await api.call('POST', `/v1/endpoints/${endpoint.id}/rotate-secret`);
    const { secret: newSecret } = rotatedSecretSchema.parse(rotate.body);
    // The worker has not read this endpoint before, so its first delivery already sees the rotation.
    await sendTo(endpoint.id, { rotated: true });
    const [request] = await receiver.waitForRequests(1);
    const signatures = String(request!.headers['webhook-signature']).split(' ');
    expect(signatures).toHaveLength(2);
    expect(signatures.every((s) => s.startsWith('v1,'))).toBe(true);
    const payload = JSON.parse(request!.body) as unknown;
    expect(new Webhook(endpoint.secret).verify(request!.body, signedHeaders(request!))).toEqual(
      payload,
    );
    expect(new Webhook(newSecret).verify(request!.body, signedHeaders(request!))).toEqual(payload);
    expect(() =>
      new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(
        request!.body,
        signedHeaders(request!),
      ),
    ).toThrow();
  });
});
