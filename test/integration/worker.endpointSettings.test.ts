/**
 * What an endpoint's settings change in what it receives: the Standard Webhooks envelope (or the
 * raw payload), its custom headers, and its own retry schedule; on real Redis, PostgreSQL and an
 * HTTP receiver.
 */
import type { Queue } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, updateEndpoint, type NewEndpoint } from '../../src/db/endpoints.js';
import { findMessage } from '../../src/db/messages.js';
import type { EndpointRow } from '../../src/db/schema.js';
import { FAN_OUT_JOB, deliveryJobId, messageJobId, type DeliveryJobData } from '../../src/jobs.js';
import { redeliverMessage } from '../../src/producer/redeliver.js';
import type { SendInput } from '../../src/producer/sendInput.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let receiver: Receiver | undefined;

beforeAll(async () => {
  fleet = await createTestFleet();
  fleet.startWorker();
});
afterAll(async () => {
  await fleet.close();
});
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

function signedHeaders(request: ReceivedRequest) {
  return {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  };
}

/** Sends one message to a new endpoint on `receiver`; resolves when the delivery has ended. */
async function deliver(
  settings: Omit<NewEndpoint, 'url'>,
  payload: SendInput['payload'] = { hello: 'world' },
): Promise<{ endpoint: EndpointRow; messageId: string; requests: ReceivedRequest[] }> {
  const endpoint = await insertEndpoint(fleet.db.db, { url: receiver!.url, ...settings });
  const sent = await fleet.producer.send({
    eventType: 'invoice.paid',
    payload,
    endpointIds: [endpoint.id],
  });
  await fleet.waitForDelivery(deliveryJobId(sent.id, endpoint.id));
  const requests = receiver!.requests.filter((r) => r.headers['webhook-id'] === sent.id);
  return { endpoint, messageId: sent.id, requests };
}

describe('the body an endpoint receives', () => {
  it('is the Standard Webhooks envelope by default, verified by the standardwebhooks package', async () => {
    receiver = await startReceiver();
    const { endpoint, messageId, requests } = await deliver({}, { amount: 42, note: 'ünïcode' });
    const [request] = requests;
    const verified = new Webhook(endpoint.secret).verify(request!.body, signedHeaders(request!));
    const message = await findMessage(fleet.db.db, messageId);
    expect(verified).toEqual({
      type: 'invoice.paid',
      timestamp: message!.createdAt.toISOString(),
      data: { amount: 42, note: 'ünïcode' },
    });
  });

  it('keeps the payload bytes as sent inside the envelope, key order included', async () => {
    receiver = await startReceiver();
    const { requests } = await deliver({}, { z: 1, a: [1, 2] });
    expect(requests[0]!.body).toMatch(
      /^\{"type":"invoice\.paid","timestamp":"[^"]+","data":\{"z":1,"a":\[1,2\]\}\}$/,
    );
  });

  it('is the raw payload, exactly, for an endpoint that asked for it', async () => {
    receiver = await startReceiver();
    const { endpoint, requests } = await deliver({ payloadFormat: 'raw' }, { z: 1, a: [1, 2] });
    expect(requests[0]!.body).toBe('{"z":1,"a":[1,2]}');
    expect(
      new Webhook(endpoint.secret).verify(requests[0]!.body, signedHeaders(requests[0]!)),
    ).toEqual({ z: 1, a: [1, 2] });
  });

  it('is the same bytes on every retry and on a redeliver, each signed correctly', async () => {
    receiver = await startReceiver(
      (_r, index, res) => void res.writeHead(index < 2 ? 500 : 204).end(),
    );
    const { endpoint, messageId, requests } = await deliver({});
    expect(requests).toHaveLength(3);
    const message = await findMessage(fleet.db.db, messageId);
    const queue = fleet.producer.deliveriesQueue as Queue<DeliveryJobData>;
    const [redelivery] = await redeliverMessage(queue, message!, [endpoint.id]);
    expect(await fleet.waitForDelivery(redelivery!.jobId)).toEqual({ state: 'completed' });
    const all = receiver.requests.filter((r) => r.headers['webhook-id'] === messageId);
    expect(all).toHaveLength(4);
    expect(new Set(all.map((r) => r.body)).size).toBe(1);
    for (const request of all) {
      expect(() =>
        new Webhook(endpoint.secret).verify(request.body, signedHeaders(request)),
      ).not.toThrow();
    }
  });

  it('stays the bare payload for a message accepted before envelopes existed', async () => {
    receiver = await startReceiver();
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    // As the previous producer stored it: body kept, no envelope column set.
    await fleet.db.sql`
      insert into messages (id, event_type, payload, body, endpoint_ids, enqueued_at)
      values ('msg_before_envelope', 'old.event', '{"a":1}'::jsonb, '{"a": 1}',
              ${`{${endpoint.id}}`}::text[], now())`;
    await fleet.producer.messagesQueue.add(
      FAN_OUT_JOB,
      { messageId: 'msg_before_envelope', enqueuedAtMs: Date.now() },
      { jobId: messageJobId('msg_before_envelope') },
    );
    const [request] = await receiver.waitForRequests(1);
    expect(request!.body).toBe('{"a": 1}');
  });
});

describe('custom headers', () => {
  it('arrive on every attempt beside the signature headers', async () => {
    receiver = await startReceiver(
      (_r, index, res) => void res.writeHead(index < 1 ? 503 : 204).end(),
    );
    const { requests } = await deliver({
      headers: { 'X-Api-Key': 'k-123', Authorization: 'Bearer abc' },
    });
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(request.headers['x-api-key']).toBe('k-123');
      expect(request.headers.authorization).toBe('Bearer abc');
      expect(request.headers['webhook-signature']).toMatch(/^v1,/);
    }
  });

  it('follow a change of the endpoint for the next message', async () => {
    receiver = await startReceiver();
    const { endpoint } = await deliver({ headers: { 'X-Tenant': 'a' } });
    await updateEndpoint(fleet.db.db, endpoint.id, { headers: { 'X-Tenant': 'b' } });
    const sent = await fleet.producer.send({
      eventType: 'invoice.paid',
      payload: {},
      endpointIds: [endpoint.id],
    });
    await fleet.waitForDelivery(deliveryJobId(sent.id, endpoint.id));
    const request = receiver.requests.find((r) => r.headers['webhook-id'] === sent.id);
    expect(request!.headers['x-tenant']).toBe('b');
  });
});

describe('an endpoint retry schedule', () => {
  it('is followed instead of the default: its number of retries and its delays', async () => {
    receiver = await startReceiver((_r, _i, res) => void res.writeHead(500).end());
    // The fleet's default is 20ms,20ms,20ms: four attempts within a fraction of a second.
    const { requests } = await deliver({ retryScheduleMs: [1000, 1000] });
    expect(requests).toHaveLength(3);
    const gaps = requests.slice(1).map((r, i) => r.receivedAtMs - requests[i]!.receivedAtMs);
    // ±20% jitter around 1 s.
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(790);
  });
});
