import { eq } from 'drizzle-orm';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { attempts, endpoints } from '../../src/db/schema.js';
import { deliveryJobId } from '../../src/jobs.js';
import type { SendInput } from '../../src/producer/sendInput.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let receiver: Receiver;

beforeAll(async () => {
  fleet = await createTestFleet();
  fleet.startWorker();
});
afterAll(async () => {
  await fleet.close();
});
afterEach(async () => {
  await receiver?.close();
});

async function endpointRow(id: string) {
  const [row] = await fleet.db.db.select().from(endpoints).where(eq(endpoints.id, id));
  return row!;
}

async function attemptRows(messageId: string) {
  return fleet.db.db
    .select()
    .from(attempts)
    .where(eq(attempts.messageId, messageId))
    .orderBy(attempts.attemptNumber);
}

/** Registers an endpoint on `receiver` and sends one message to it; resolves when the delivery ends. */
async function deliverOnce(payload: SendInput['payload'] = { hello: 'world' }) {
  const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
  const sent = await fleet.producer.send({
    eventType: 'test.event',
    payload,
    endpointIds: [endpoint.id],
  });
  const end = await fleet.waitForDelivery(deliveryJobId(sent.id, endpoint.id));
  await fleet.flushRecorders();
  return { endpoint, messageId: sent.id, end };
}

describe('delivering a message', () => {
  it('arrives signed with Standard Webhooks headers that verify with the standardwebhooks package', async () => {
    receiver = await startReceiver();
    const { endpoint, messageId, end } = await deliverOnce({ amount: 42, note: 'ünïcode' });
    expect(end.state).toBe('completed');
    const [request] = receiver.requests;
    expect(request!.method).toBe('POST');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['webhook-id']).toBe(messageId);
    const verified = new Webhook(endpoint.secret).verify(request!.body, {
      'webhook-id': String(request!.headers['webhook-id']),
      'webhook-timestamp': String(request!.headers['webhook-timestamp']),
      'webhook-signature': String(request!.headers['webhook-signature']),
    });
    expect(verified).toMatchObject({ type: 'test.event', data: { amount: 42, note: 'ünïcode' } });
  });

  it('sets last_success_at after a 2xx and resets consecutive failures', async () => {
    receiver = await startReceiver();
    const before = Date.now();
    const { endpoint } = await deliverOnce();
    const row = await endpointRow(endpoint.id);
    expect(row.lastSuccessAt).not.toBeNull();
    expect(row.lastSuccessAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(row.consecutiveFailures).toBe(0);
    expect(row.successCount).toBe(1);
  });

  it('leaves last_success_at untouched after a 500, and records the failure', async () => {
    receiver = await startReceiver((_req, _i, res) => void res.writeHead(500).end('boom'));
    const { endpoint, end, messageId } = await deliverOnce();
    expect(end).toMatchObject({ state: 'failed' });
    const row = await endpointRow(endpoint.id);
    expect(row.lastSuccessAt).toBeNull();
    expect(row.lastFailureAt).not.toBeNull();
    // 1 attempt + 3 retries from the test schedule '20ms,20ms,20ms'.
    expect(row.consecutiveFailures).toBe(4);
    const rows = await attemptRows(messageId);
    expect(rows.map((r) => r.outcome)).toEqual(['retrying', 'retrying', 'retrying', 'failed']);
    expect(rows[0]!.error).toContain('HTTP 500: boom');
  });

  it('ends delivered after 500, 500, 200 with three attempts, all with the same webhook-id', async () => {
    receiver = await startReceiver(
      (_req, index, res) => void res.writeHead(index < 2 ? 500 : 200).end(),
    );
    const { endpoint, messageId, end } = await deliverOnce();
    expect(end.state).toBe('completed');
    expect(receiver.requests).toHaveLength(3);
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(
      new Set([messageId]),
    );
    const rows = await attemptRows(messageId);
    expect(rows.map((r) => [r.attemptNumber, r.outcome, r.statusCode])).toEqual([
      [1, 'retrying', 500],
      [2, 'retrying', 500],
      [3, 'succeeded', 200],
    ]);
    const row = await endpointRow(endpoint.id);
    expect(row.lastSuccessAt).not.toBeNull();
    expect(row.consecutiveFailures).toBe(0);
    expect(row.failureCount).toBe(2);
  });

  it('stops at once on 410 Gone', async () => {
    receiver = await startReceiver((_req, _i, res) => void res.writeHead(410).end());
    const { end, messageId } = await deliverOnce();
    expect(end).toMatchObject({ state: 'failed', reason: expect.stringContaining('410') });
    expect(receiver.requests).toHaveLength(1);
    expect((await attemptRows(messageId)).map((r) => r.outcome)).toEqual(['failed']);
  });

  it('does not follow redirects: a 3xx is a failure and the target is never contacted', async () => {
    const target = await startReceiver();
    receiver = await startReceiver(
      (_req, _i, res) => void res.writeHead(302, { location: target.url }).end(),
    );
    const { end } = await deliverOnce();
    expect(end.state).toBe('failed');
    expect(target.requests).toHaveLength(0);
    await target.close();
  });

  it('honours Retry-After on 429', async () => {
    receiver = await startReceiver(
      (_req, index, res) =>
        void res
          .writeHead(index === 0 ? 429 : 204, index === 0 ? { 'retry-after': '1' } : {})
          .end(),
    );
    const { end } = await deliverOnce();
    expect(end.state).toBe('completed');
    const [first, second] = receiver.requests;
    // The schedule alone would retry after ~20 ms; Retry-After asked for a second.
    expect(second!.receivedAtMs - first!.receivedAtMs).toBeGreaterThanOrEqual(950);
  });

  it('gives a receiver that never answers only the timeout, then retries', async () => {
    receiver = await startReceiver(() => {
      /* never answers */
    });
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    const sent = await fleet.producer.send({
      eventType: 't',
      payload: {},
      endpointIds: [endpoint.id],
    });
    await receiver.waitForRequests(2);
    const rows = await (async () => {
      await fleet.flushRecorders();
      return attemptRows(sent.id);
    })();
    expect(rows[0]).toMatchObject({
      outcome: 'retrying',
      error: expect.stringContaining('timed out after 2000 ms'),
    });
    await setEndpointActive(fleet.db.db, endpoint.id, false);
    await fleet.waitForDelivery(deliveryJobId(sent.id, endpoint.id));
  });

  it('does not let a receiver that trickles its body forever hold a worker slot past the timeout', async () => {
    const timers: NodeJS.Timeout[] = [];
    receiver = await startReceiver((_req, _i, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      timers.push(setInterval(() => res.write('.'), 200));
    });
    const startedMs = Date.now();
    const { end } = await deliverOnce();
    timers.forEach(clearInterval);
    // The 2xx status decided the outcome; the endless body was cut off by the 2000 ms budget.
    expect(end.state).toBe('completed');
    expect(Date.now() - startedMs).toBeLessThan(4000);
  });

  it('does not send to a disabled endpoint; the job fails with the reason', async () => {
    receiver = await startReceiver();
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    await setEndpointActive(fleet.db.db, endpoint.id, false, 'manual');
    const sent = await fleet.producer.deliver(endpoint.id, { x: 1 }).catch((e: Error) => e);
    expect(sent).toBeInstanceOf(Error);
    // A delivery queued before the endpoint was disabled:
    await setEndpointActive(fleet.db.db, endpoint.id, true);
    await fleet.db.db
      .update(endpoints)
      .set({ active: false, deactivationReason: 'manual' })
      .where(eq(endpoints.id, endpoint.id));
    const jobId = await fleet.queueDelivery('msg_queued_before', endpoint.id);
    const end = await fleet.waitForDelivery(jobId);
    expect(end).toEqual({
      state: 'failed',
      reason: `endpoint ${endpoint.id} is disabled (manual)`,
    });
    expect(receiver.requests).toHaveLength(0);
  });
});
