import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createdEndpointSchema,
  endpointListSchema,
  errorSchema,
  messageListSchema,
  messageSchema,
  sendMessageResponse,
  type MessageView,
} from '../../src/api/contracts.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

// Three customers' worth of receivers side by side, delivered to by a real worker: owner A's,
// owner B's and a platform-wide (ownerless) one.
let api: ApiHarness;
let receivers: Record<'a' | 'b' | 'none', Receiver>;
const ids = { a: '', b: '', none: '' };

beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_RECORDER_FLUSH_MS: '25' });
  api.fleet.startWorker();
  receivers = { a: await startReceiver(), b: await startReceiver(), none: await startReceiver() };
  ids.a = (await register({ url: receivers.a.url, ownerId: 'org_a' })).id;
  ids.b = (await register({ url: receivers.b.url, ownerId: 'org:b@eu-1' })).id;
  ids.none = (await register({ url: receivers.none.url })).id;
});
afterAll(async () => {
  await api.close();
  await Promise.all(Object.values(receivers).map((r) => r.close()));
});

async function register(body: Record<string, unknown>) {
  const res = await api.call('POST', '/v1/endpoints', { body });
  expect(res.status, res.text).toBe(201);
  return createdEndpointSchema.parse(res.body);
}

async function send(body: Record<string, unknown>) {
  const res = await api.call('POST', '/v1/messages', {
    body: { eventType: 'order.paid', ...body },
  });
  expect(res.status, res.text).toBe(202);
  return sendMessageResponse.parse(res.body);
}

/** Reads the message until every delivery succeeded (attempts arrive in recorder batches). */
async function delivered(id: string): Promise<MessageView> {
  for (let read = 0; read < 200; read++) {
    const message = messageSchema.parse((await api.call('GET', `/v1/messages/${id}`)).body);
    if (message.deliveries.every((d) => d.status === 'succeeded')) return message;
    await delay(25);
  }
  throw new Error(`message ${id} was not delivered`);
}

const received = (receiver: Receiver) =>
  receiver.requests.map((request) => request.headers['webhook-id']);

describe('owners of endpoints', () => {
  it('shows the owner in the endpoint views, and null for an endpoint without one', async () => {
    const a = await api.call('GET', `/v1/endpoints/${ids.a}`);
    expect(a.body).toMatchObject({ id: ids.a, ownerId: 'org_a' });
    const none = await api.call('GET', `/v1/endpoints/${ids.none}`);
    expect(none.body).toMatchObject({ id: ids.none, ownerId: null });
  });

  it('refuses an owner id outside the safe set with a 422 naming ownerId and the rule', async () => {
    for (const ownerId of ['', 'has space', 'a/b', 'x'.repeat(129), 'tab\there', 42]) {
      const res = await api.call('POST', '/v1/endpoints', {
        body: { url: receivers.a.url, ownerId },
      });
      expect(res.status, JSON.stringify(ownerId)).toBe(422);
      const error = errorSchema.parse(res.body);
      expect(error.fields?.[0]?.path).toBe('ownerId');
    }
    const res = await api.call('POST', '/v1/endpoints', {
      body: { url: receivers.a.url, ownerId: 'has space' },
    });
    expect(res.body).toMatchObject({ code: 'validation_failed' });
    expect((res.body as { detail: string }).detail).toContain('letters, digits and _ - . : @');
  });

  it('lists one owner with ?ownerId= and every endpoint without it', async () => {
    const a = endpointListSchema.parse((await api.call('GET', '/v1/endpoints?ownerId=org_a')).body);
    expect(a.data.map((e) => e.id)).toEqual([ids.a]);
    const all = endpointListSchema.parse((await api.call('GET', '/v1/endpoints')).body);
    expect(all.data.map((e) => e.id)).toEqual(expect.arrayContaining([ids.a, ids.b, ids.none]));
    const bad = await api.call('GET', '/v1/endpoints?ownerId=no%20spaces');
    expect(bad.status).toBe(422);
    expect(errorSchema.parse(bad.body).fields?.[0]?.path).toBe('ownerId');
  });

  it('does not let PATCH move an endpoint to another owner', async () => {
    const res = await api.call('PATCH', `/v1/endpoints/${ids.a}`, { body: { ownerId: 'org_b' } });
    expect(res.status).toBe(422);
    expect((await api.call('GET', `/v1/endpoints/${ids.a}`)).body).toMatchObject({
      ownerId: 'org_a',
    });
  });
});

describe('sends scoped by owner', () => {
  it("delivers a message for an owner to that owner's endpoints only, and an ownerless one to ownerless endpoints only", async () => {
    const forA = await send({ ownerId: 'org_a', payload: { n: 1 } });
    const forB = await send({ ownerId: 'org:b@eu-1', payload: { n: 2 } });
    const forNone = await send({ payload: { n: 3 } });
    expect(forA.endpointIds).toEqual([ids.a]);
    expect(forB.endpointIds).toEqual([ids.b]);
    expect(forNone.endpointIds).toEqual([ids.none]);
    for (const { id } of [forA, forB, forNone]) await delivered(id);
    expect(received(receivers.a)).toEqual([forA.id]);
    expect(received(receivers.b)).toEqual([forB.id]);
    expect(received(receivers.none)).toEqual([forNone.id]);

    const message = messageSchema.parse((await api.call('GET', `/v1/messages/${forA.id}`)).body);
    expect(message.ownerId).toBe('org_a');
    const ownerless = messageSchema.parse(
      (await api.call('GET', `/v1/messages/${forNone.id}`)).body,
    );
    expect(ownerless.ownerId).toBeNull();
  });

  it('sends for an owner through the library as well', async () => {
    const result = await api.fleet.producer.send({
      ownerId: 'org:b@eu-1',
      eventType: 'order.paid',
      payload: { n: 4 },
    });
    expect(result.endpointIds).toEqual([ids.b]);
    await delivered(result.id);
  });

  it('reaches no endpoint for an owner that has none', async () => {
    const result = await send({ ownerId: 'org_nobody', payload: {} });
    expect(result).toMatchObject({ deliveries: 0, endpointIds: [] });
  });

  it("refuses endpointIds naming another owner's endpoint, or an owned one on an ownerless message, naming each id", async () => {
    const res = await api.call('POST', '/v1/messages', {
      body: {
        eventType: 'order.paid',
        payload: {},
        ownerId: 'org_a',
        endpointIds: [ids.a, ids.b, ids.none],
      },
    });
    expect(res.status).toBe(422);
    const error = errorSchema.parse(res.body);
    expect(error.fields?.map((f) => f.path)).toEqual(['endpointIds.1', 'endpointIds.2']);
    expect(error.detail).toContain(ids.b);
    expect(error.detail).toContain(ids.none);

    const ownerless = await api.call('POST', '/v1/messages', {
      body: { eventType: 'order.paid', payload: {}, endpointIds: [ids.none, ids.a] },
    });
    expect(ownerless.status).toBe(422);
    expect(errorSchema.parse(ownerless.body).fields).toEqual([
      { path: 'endpointIds.1', message: expect.stringContaining(ids.a) as string },
    ]);
  });

  it("narrows an owner's message to its own endpoints named in endpointIds", async () => {
    const result = await send({ ownerId: 'org_a', payload: {}, endpointIds: [ids.a] });
    expect(result.endpointIds).toEqual([ids.a]);
  });

  it('treats the same idempotency key for another owner as a conflict', async () => {
    await send({ ownerId: 'org_a', payload: { k: 1 }, idempotencyKey: 'owners-k1' });
    const res = await api.call('POST', '/v1/messages', {
      body: {
        eventType: 'order.paid',
        ownerId: 'org:b@eu-1',
        payload: { k: 1 },
        idempotencyKey: 'owners-k1',
      },
    });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'idempotency_conflict' });
  });

  it('lists messages newest first, one owner with ?ownerId=, a page at a time', async () => {
    const sent: string[] = [];
    for (let n = 0; n < 3; n++)
      sent.push((await send({ ownerId: 'org_pages', payload: { n } })).id);
    const first = messageListSchema.parse(
      (await api.call('GET', '/v1/messages?ownerId=org_pages&limit=2')).body,
    );
    expect(first.data.map((m) => m.id)).toEqual([sent[2], sent[1]]);
    expect(first.data[0]).toMatchObject({ ownerId: 'org_pages', eventType: 'order.paid' });
    const second = messageListSchema.parse(
      (await api.call('GET', `/v1/messages?ownerId=org_pages&limit=2&cursor=${first.nextCursor}`))
        .body,
    );
    expect(second).toEqual({ data: [expect.objectContaining({ id: sent[0] })], nextCursor: null });
    const all = messageListSchema.parse((await api.call('GET', '/v1/messages?limit=100')).body);
    expect(new Set(all.data.map((m) => m.ownerId))).toEqual(
      new Set(['org_a', 'org:b@eu-1', null, 'org_nobody', 'org_pages']),
    );
    const bad = await api.call('GET', '/v1/messages?limit=0&cursor=nope');
    expect(bad.status).toBe(422);
    expect(errorSchema.parse(bad.body).fields?.map((f) => f.path)).toEqual(['limit', 'cursor']);
  });

  it("records a test event under the endpoint's owner", async () => {
    const res = await api.call('POST', `/v1/endpoints/${ids.a}/test`);
    expect(res.status).toBe(202);
    const { id } = sendMessageResponse.parse(res.body);
    expect((await api.call('GET', `/v1/messages/${id}`)).body).toMatchObject({ ownerId: 'org_a' });
  });
});
