import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { findMessage } from '../../src/db/messages.js';
import { HookfleetError } from '../../src/errors.js';
import { FAN_OUT_JOB, deliveryJobId, messageJobId } from '../../src/jobs.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// No worker runs in this file: jobs stay in the queue where the test can look at them.
let fleet: TestFleet;
beforeAll(async () => {
  fleet = await createTestFleet({ HOOKFLEET_MAX_PAYLOAD_BYTES: '1024' });
});
afterAll(async () => {
  await fleet.close();
});

const url = 'http://127.0.0.1:9/hook';

describe('Producer.send', () => {
  it('stores the message once with its exact body and endpoint set, and adds one ids-only fan-out job', async () => {
    const { db } = fleet.db;
    const exact = await insertEndpoint(db, { url, eventTypes: ['order.paid'] });
    const all = await insertEndpoint(db, { url });
    const star = await insertEndpoint(db, { url, eventTypes: ['*'] });
    const other = await insertEndpoint(db, { url, eventTypes: ['order.refunded'] });
    const disabled = await insertEndpoint(db, { url, eventTypes: ['order.paid'] });
    await setEndpointActive(db, disabled.id, false);

    // Keys out of order and a duplicate key: jsonb would reorder and drop them, the body must not.
    const payload = JSON.parse('{"orderId":7,"b":1.50,"a":"\\u00e9"}') as Record<
      string,
      string | number
    >;
    const result = await fleet.producer.send({ eventType: 'order.paid', payload });

    expect(new Set(result.endpointIds)).toEqual(new Set([exact.id, all.id, star.id]));
    expect(result.deliveries).toBe(3);
    const job = await fleet.producer.messagesQueue.getJob(messageJobId(result.id));
    expect(job?.name).toBe(FAN_OUT_JOB);
    // Ids only: the owner's (none here) counts the job in its owner's share of the queue.
    expect(job!.data).toEqual({
      messageId: result.id,
      enqueuedAtMs: expect.any(Number) as number,
      ownerId: null,
    });
    expect(await fleet.producer.deliveriesQueue.getJobCounts()).toMatchObject({ waiting: 0 });
    expect(
      await fleet.producer.deliveriesQueue.getJob(deliveryJobId(result.id, exact.id)),
    ).toBeUndefined();
    const message = await findMessage(db, result.id);
    expect(message?.enqueuedAt).not.toBeNull();
    expect(message?.body).toBe(JSON.stringify(payload));
    expect(message?.endpointIds).not.toContain(other.id);
  });

  it('narrows the fan-out to endpointIds', async () => {
    const { db } = fleet.db;
    const a = await insertEndpoint(db, { url, eventTypes: ['narrow'] });
    await insertEndpoint(db, { url, eventTypes: ['narrow'] });
    const result = await fleet.producer.send({
      eventType: 'narrow',
      payload: 1,
      endpointIds: [a.id],
    });
    expect(result.endpointIds).toEqual([a.id]);
  });

  it('never enqueues twice for the same idempotency key, even when sends race', async () => {
    const { db } = fleet.db;
    const endpoint = await insertEndpoint(db, { url, eventTypes: ['idem'] });
    const input = { eventType: 'idem', payload: { n: 1 }, idempotencyKey: 'order-7-paid' };
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => fleet.producer.send(input)));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    const jobs = await fleet.producer.messagesQueue.getJobs(['wait'], 0, -1);
    expect(jobs.filter((j) => j.data.messageId === results[0]!.id)).toHaveLength(1);
    expect(results[0]!.endpointIds).toContain(endpoint.id);
  });

  it('answers idempotency_conflict when a key is reused with another payload', async () => {
    await fleet.producer.send({
      eventType: 'idem2',
      payload: { n: 1 },
      idempotencyKey: 'k-conflict',
    });
    const error = await fleet.producer
      .send({ eventType: 'idem2', payload: { n: 2 }, idempotencyKey: 'k-conflict' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HookfleetError);
    expect(error).toMatchObject({ code: 'idempotency_conflict', status: 409 });
  });

  it('treats the same payload with keys in another order as the same message', async () => {
    const first = await fleet.producer.send({
      eventType: 'idem3',
      payload: { a: 1, b: 2 },
      idempotencyKey: 'k-order',
    });
    const again = await fleet.producer.send({
      eventType: 'idem3',
      payload: { b: 2, a: 1 },
      idempotencyKey: 'k-order',
    });
    expect(again).toMatchObject({ id: first.id, duplicate: true });
  });

  it('refuses a payload over the size limit, naming the limit', async () => {
    const error = await fleet.producer
      .send({ eventType: 'big', payload: 'x'.repeat(2000) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'payload_too_large', status: 413 });
    expect((error as Error).message).toContain('HOOKFLEET_MAX_PAYLOAD_BYTES');
  });

  it('refuses malformed input with a field list', async () => {
    const error = await fleet.producer
      .send({ eventType: 'has space', payload: {}, extra: true } as never)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'validation_failed', status: 422 });
    const fields = (error as HookfleetError).fields!.map((f) => f.path);
    expect(fields).toContain('eventType');
  });

  it('deliver() sends to one endpoint whatever it subscribes to, and refuses unknown endpoints', async () => {
    const { db } = fleet.db;
    const endpoint = await insertEndpoint(db, { url, eventTypes: ['something.else'] });
    const result = await fleet.producer.deliver(endpoint.id, { ping: true });
    expect(result.endpointIds).toEqual([endpoint.id]);
    await expect(fleet.producer.deliver('ep_missing', {})).rejects.toMatchObject({
      code: 'not_found',
      status: 404,
    });
  });
});
