import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { findMessage } from '../../src/db/messages.js';
import { attempts } from '../../src/db/schema.js';
import {
  DELIVERIES_QUEUE,
  REDELIVER_JOB,
  RETRY_JOB,
  deliveryJobId,
  messageJobId,
  type DeliveryJobData,
} from '../../src/jobs.js';
import { createApp } from '../../src/api/app.js';
import {
  errorSchema,
  healthSchema,
  messageSchema,
  redeliverResponse,
  sendMessageResponse,
} from '../../src/api/contracts.js';
import { ENVELOPE_ALLOWANCE_BYTES } from '../../src/api/messageRoutes.js';
import { Producer } from '../../src/producer/producer.js';
import { HookfleetError } from '../../src/errors.js';
import { callApp, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

// No worker runs in this file (except one short-lived BullMQ worker that settles jobs by hand).
const MAX_PAYLOAD_BYTES = 1024;
let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES) });
});
afterAll(async () => {
  await api.close();
});

const url = 'http://127.0.0.1:9/hook';
const newEndpoint = async () =>
  (await insertEndpoint(api.fleet.db.db, { url, eventTypes: ['msg.test'] })).id;

async function send(body: Record<string, unknown>) {
  const res = await api.call('POST', '/v1/messages', { body });
  expect(res.status, res.text).toBe(202);
  return sendMessageResponse.parse(res.body);
}

describe('POST /v1/messages', () => {
  it('fans out to the subscribed endpoints and answers 202 with the id and deliveries', async () => {
    const a = await newEndpoint();
    const b = await newEndpoint();
    const sent = await send({ eventType: 'msg.test', payload: { n: 1 }, endpointIds: [a, b] });
    expect(sent).toMatchObject({ deliveries: 2, duplicate: false });
    expect(new Set(sent.endpointIds)).toEqual(new Set([a, b]));
    const job = await api.fleet.producer.messagesQueue.getJob(messageJobId(sent.id));
    // The owner (none here) is carried for its share of the queue (delivery/ownerQueue.ts).
    expect(job?.data).toEqual({
      messageId: sent.id,
      enqueuedAtMs: expect.any(Number),
      ownerId: null,
    });
    expect((await findMessage(api.fleet.db.db, sent.id))?.body).toBe('{"n":1}');
  });

  it('answers the first message for a reused idempotency key, and 409 when the payload differs', async () => {
    const first = await send({
      eventType: 'msg.idem',
      payload: { n: 1 },
      idempotencyKey: 'api-k1',
    });
    const again = await send({
      eventType: 'msg.idem',
      payload: { n: 1 },
      idempotencyKey: 'api-k1',
    });
    expect(again).toMatchObject({ id: first.id, duplicate: true });
    const conflict = await api.call('POST', '/v1/messages', {
      body: { eventType: 'msg.idem', payload: { n: 2 }, idempotencyKey: 'api-k1' },
    });
    expect(conflict.status).toBe(409);
    expect(errorSchema.parse(conflict.body).code).toBe('idempotency_conflict');
  });

  it('refuses a body whose Content-Length is over the limit without reading it (413)', async () => {
    const res = await api.call('POST', '/v1/messages', {
      body: { eventType: 'msg.test', payload: 1 },
      headers: { 'content-length': String(MAX_PAYLOAD_BYTES + ENVELOPE_ALLOWANCE_BYTES + 1) },
    });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'payload_too_large' });
  });

  it('refuses a body over the limit by the bytes read when no Content-Length is sent (413)', async () => {
    const chunk = new TextEncoder().encode(' '.repeat(16 * 1024));
    let sentChunks = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Far more than the limit; the server must stop reading long before the end.
        if (sentChunks++ < 1000) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await api.app.request('/v1/messages', {
      method: 'POST',
      headers: { authorization: 'Bearer k1', 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    });
    expect(response.status).toBe(413);
    expect(sentChunks).toBeLessThan(1000);
  });

  it('refuses a payload over HOOKFLEET_MAX_PAYLOAD_BYTES even when the body is within the envelope allowance (413)', async () => {
    const res = await api.call('POST', '/v1/messages', {
      body: { eventType: 'msg.test', payload: 'x'.repeat(MAX_PAYLOAD_BYTES + 10) },
    });
    expect(res.status).toBe(413);
    expect(String(res.body.detail)).toContain('HOOKFLEET_MAX_PAYLOAD_BYTES');
  });
});

describe('GET /v1/messages/:id', () => {
  it('shows each delivery with a status derived from its attempts, oldest attempt first', async () => {
    const [pending, retrying, succeeded, failed] = [
      await newEndpoint(),
      await newEndpoint(),
      await newEndpoint(),
      await newEndpoint(),
    ];
    const sent = await send({
      eventType: 'msg.test',
      payload: { a: [1, 2] },
      endpointIds: [pending, retrying, succeeded, failed],
    });
    const at = (s: number) => new Date(Date.now() - 60_000 + s * 1000);
    const row = (
      endpointId: string,
      attemptNumber: number,
      outcome: string,
      statusCode: number | null,
      error: string | null,
    ) => ({
      messageId: sent.id,
      endpointId,
      attemptNumber,
      attemptedAt: at(attemptNumber),
      outcome,
      statusCode,
      durationMs: 12,
      error,
    });
    await api.fleet.db.db
      .insert(attempts)
      .values([
        row(retrying, 1, 'retrying', 503, 'HTTP 503'),
        row(succeeded, 2, 'succeeded', 204, null),
        row(succeeded, 1, 'retrying', null, 'timed out after 2000 ms'),
        row(failed, 1, 'retrying', 500, 'HTTP 500'),
        row(failed, 2, 'failed', 410, 'HTTP 410'),
      ]);
    const res = await api.call('GET', `/v1/messages/${sent.id}`);
    expect(res.status).toBe(200);
    const message = messageSchema.parse(res.body);
    expect(message).toMatchObject({
      id: sent.id,
      eventType: 'msg.test',
      payload: { a: [1, 2] },
      idempotencyKey: null,
    });
    const byEndpoint = new Map(message.deliveries.map((d) => [d.endpointId, d]));
    expect(byEndpoint.get(pending)).toEqual({
      endpointId: pending,
      status: 'queued',
      attempts: [],
    });
    expect(byEndpoint.get(retrying)?.status).toBe('retrying');
    expect(byEndpoint.get(succeeded)?.status).toBe('succeeded');
    expect(byEndpoint.get(succeeded)?.attempts.map((a) => a.attemptNumber)).toEqual([1, 2]);
    expect(byEndpoint.get(succeeded)?.attempts[0]).toMatchObject({
      statusCode: null,
      error: 'timed out after 2000 ms',
      durationMs: 12,
    });
    expect(byEndpoint.get(failed)?.status).toBe('failed');
  });

  it('answers 404 for an unknown or malformed id', async () => {
    expect((await api.call('GET', '/v1/messages/msg_missing')).status).toBe(404);
    expect((await api.call('GET', '/v1/messages/..%2F..%2Fetc')).status).toBe(404);
  });
});

describe('POST /v1/messages/:id/redeliver', () => {
  it('retries failed jobs in place, re-enqueues finished or expired ones, leaves queued ones alone', async () => {
    const [failing, completing, expiring] = [
      await newEndpoint(),
      await newEndpoint(),
      await newEndpoint(),
    ];
    const sent = await send({
      eventType: 'msg.test',
      payload: { r: 1 },
      endpointIds: [failing, completing, expiring],
    });
    const jobId = (endpointId: string) => deliveryJobId(sent.id, endpointId);
    // Three deliveries with jobs of their own (as retries would have), settled by hand: one
    // fails for good, two complete. No worker takes the fan-out: it is removed as if done.
    await api.fleet.producer.messagesQueue.remove(messageJobId(sent.id));
    await api.fleet.producer.deliveriesQueue.addBulk(
      [failing, completing, expiring].map((endpointId) => ({
        name: RETRY_JOB,
        data: { messageId: sent.id, endpointId, attemptsBefore: 1, enqueuedAtMs: Date.now() },
        opts: { jobId: jobId(endpointId) },
      })),
    );
    const worker = new Worker<DeliveryJobData>(
      DELIVERIES_QUEUE,
      (job) => {
        if (job.data.endpointId === failing) throw new UnrecoverableError('410 Gone');
        return Promise.resolve();
      },
      { connection: { url: api.fleet.config.redisUrl }, prefix: api.fleet.config.queuePrefix },
    );
    try {
      const ends = await Promise.all(
        [failing, completing, expiring].map((id) => api.fleet.waitForDelivery(jobId(id))),
      );
      expect(ends.map((e) => e.state)).toEqual(['failed', 'completed', 'completed']);
    } finally {
      await worker.close();
    }
    const queue = api.fleet.producer.deliveriesQueue;
    await (await queue.getJob(jobId(expiring)))!.remove(); // as removeOnComplete would

    const res = await api.call('POST', `/v1/messages/${sent.id}/redeliver`);
    expect(res.status).toBe(202);
    const first = new Map(
      redeliverResponse.parse(res.body).redeliveries.map((r) => [r.endpointId, r]),
    );
    expect(first.get(failing)).toEqual({
      endpointId: failing,
      action: 'retried',
      jobId: jobId(failing),
    });
    expect(await (await queue.getJob(jobId(failing)))!.getState()).toBe('waiting');
    for (const id of [completing, expiring]) {
      const redelivery = first.get(id)!;
      expect(redelivery.action).toBe('enqueued');
      expect(redelivery.jobId).not.toBe(jobId(id));
      const job = await queue.getJob(redelivery.jobId);
      expect(job?.name).toBe(REDELIVER_JOB);
      // Ids only: the worker reads the body from the message row.
      expect(job?.data).toEqual({
        messageId: sent.id,
        endpointId: id,
        enqueuedAtMs: expect.any(Number),
      });
    }

    const again = await api.call('POST', `/v1/messages/${sent.id}/redeliver`, {
      body: { endpointIds: [failing] },
    });
    expect(redeliverResponse.parse(again.body).redeliveries).toEqual([
      { endpointId: failing, action: 'pending', jobId: jobId(failing) },
    ]);
  });

  it('refuses endpoint ids the message was not sent to (422) and unknown messages (404)', async () => {
    const a = await newEndpoint();
    const stranger = await newEndpoint();
    const sent = await send({ eventType: 'msg.test', payload: 1, endpointIds: [a] });
    const res = await api.call('POST', `/v1/messages/${sent.id}/redeliver`, {
      body: { endpointIds: [stranger] },
    });
    expect(res.status).toBe(422);
    expect(errorSchema.parse(res.body).fields?.[0]?.path).toBe('endpointIds.0');
    expect((await api.call('POST', '/v1/messages/msg_missing/redeliver')).status).toBe(404);
  });
});

describe('with Redis unreachable', () => {
  it('passes the Producer’s own 503 on with Retry-After (Redis lost in the middle of a send)', async () => {
    const producer = {
      deliveries: api.fleet.producer.deliveries,
      messages: api.fleet.producer.messages,
      queueBackend: api.fleet.producer.queueBackend,
      send: () =>
        Promise.reject(new HookfleetError('redis_unavailable', 'Redis is unavailable', 503)),
    } as unknown as Producer;
    const app = createApp({ ...api.deps, producer });
    const res = await callApp(app, 'POST', '/v1/messages', {
      body: { eventType: 'msg.test', payload: 1 },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body).toMatchObject({ code: 'redis_unavailable' });
  });

  it('answers 503 with Retry-After to sends, and /healthz names Redis as down', async () => {
    // Port 1: nothing listens, so this client never becomes ready.
    const deadRedis = new Redis('redis://127.0.0.1:1', {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 50,
    });
    deadRedis.on('error', () => {});
    const producer = new Producer({
      config: api.fleet.config,
      dbClient: api.fleet.db,
      redis: deadRedis,
    });
    producer.deliveriesQueue.on('error', () => {}); // the refused connection, expected here
    const app = createApp({ ...api.deps, producer, redis: deadRedis });
    try {
      const res = await callApp(app, 'POST', '/v1/messages', {
        body: { eventType: 'msg.test', payload: 1 },
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(errorSchema.parse(res.body)).toMatchObject({ code: 'redis_unavailable' });
      expect(String(res.body.detail)).toContain('Redis');

      const health = await callApp(app, 'GET', '/healthz', { anonymous: true });
      expect(health.status).toBe(503);
      expect(healthSchema.parse(health.body)).toEqual({
        status: 'unavailable',
        redis: 'down',
        postgres: 'up',
      });
    } finally {
      deadRedis.disconnect();
      await producer.close();
    }
  });
});
