/**
 * The fan-out of one message job (worker/fanOutProcessor.ts): bounded attempts in flight, a slow
 * receiver handed to a guard job instead of holding the fan-out, and ids-only delivery jobs for
 * what needs a schedule of its own.
 */
import type { ServerResponse } from 'node:http';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { MESSAGES_QUEUE, RETRY_JOB, deliveryJobId, messageJobId } from '../../src/jobs.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let fanOuts: QueueEvents;
const receivers: Receiver[] = [];

beforeAll(async () => {
  fleet = await createTestFleet({
    // Long enough that a fan-out waiting for a slow receiver would show.
    HOOKFLEET_DELIVERY_TIMEOUT_MS: '10000',
    HOOKFLEET_CIRCUIT_FAILURES: '0',
    HOOKFLEET_ENDPOINT_MAX_IN_FLIGHT: '0',
  });
  fanOuts = new QueueEvents(MESSAGES_QUEUE, {
    connection: { url: fleet.config.redisUrl },
    prefix: fleet.config.queuePrefix,
  });
  await fanOuts.waitUntilReady();
});
afterAll(async () => {
  await fanOuts.close();
  await fleet.close();
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(respond: (request: ReceivedRequest, res: ServerResponse) => void) {
  const started = await startReceiver((request, _index, res) => respond(request, res));
  receivers.push(started);
  return started;
}

/** Resolves when the fan-out job of `messageId` completes. */
function fanOutCompleted(messageId: string): Promise<number> {
  return new Promise((resolve) => {
    const onCompleted = ({ jobId }: { jobId: string }) => {
      if (jobId !== messageJobId(messageId)) return;
      fanOuts.off('completed', onCompleted);
      resolve(Date.now());
    };
    fanOuts.on('completed', onCompleted);
  });
}

describe('a fan-out', () => {
  it('never has more attempts in flight than HOOKFLEET_CONCURRENCY, whatever the fan-out', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const slow = await receiver((_request, res) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight -= 1;
        res.writeHead(204).end();
      }, 20);
    });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push((await insertEndpoint(fleet.db.db, { url: slow.url, eventTypes: ['bound'] })).id);
    }
    const worker = fleet.startWorker({ HOOKFLEET_CONCURRENCY: '4' });
    const sent = await Promise.all(
      [1, 2].map((n) => fleet.producer.send({ eventType: 'bound', payload: { n } })),
    );
    const ends = await Promise.all(
      sent.flatMap((s) => ids.map((id) => fleet.waitForDelivery(deliveryJobId(s.id, id)))),
    );
    expect(ends.every((end) => end.state === 'completed')).toBe(true);
    expect(slow.requests).toHaveLength(120);
    expect(maxInFlight).toBeLessThanOrEqual(4);
    expect(maxInFlight).toBeGreaterThan(1);
    await worker.close();
  });

  it('hands a slow receiver to a guard job and completes without it; the attempt’s end removes the guard', async () => {
    const fast = await receiver((_request, res) => void res.writeHead(204).end());
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = await receiver((_request, res) => void held.then(() => res.writeHead(204).end()));
    const fastId = (await insertEndpoint(fleet.db.db, { url: fast.url, eventTypes: ['hand'] })).id;
    const slowId = (await insertEndpoint(fleet.db.db, { url: slow.url, eventTypes: ['hand'] })).id;
    const worker = fleet.startWorker();
    const sentAtMs = Date.now();
    const sent = await fleet.producer.send({ eventType: 'hand', payload: { hand: 1 } });
    const completedAtMs = await fanOutCompleted(sent.id);
    // About HAND_OFF_AFTER_MS (1 s), far from the 10 s timeout.
    expect(completedAtMs - sentAtMs).toBeLessThan(5000);
    expect(fast.requests).toHaveLength(1);
    expect(slow.requests).toHaveLength(1);
    const guard = await fleet.producer.deliveriesQueue.getJob(deliveryJobId(sent.id, slowId));
    expect(await guard?.getState()).toBe('delayed');
    expect(guard?.name).toBe(RETRY_JOB);
    expect(guard?.data).toEqual({
      messageId: sent.id,
      endpointId: slowId,
      attemptsBefore: 0,
      enqueuedAtMs: expect.any(Number),
    });

    release();
    expect(await fleet.waitForDelivery(deliveryJobId(sent.id, slowId))).toEqual({
      state: 'completed',
    });
    expect(await fleet.producer.deliveriesQueue.getJob(deliveryJobId(sent.id, slowId))).toBe(
      undefined,
    );
    expect(slow.requests).toHaveLength(1);
    expect(fastId).toBeDefined();
    await worker.close();
  });

  it('replaces the guard with the retry when the slow attempt fails, and delivers on the retry', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = await receiver((_request, res) => {
      if (slow.requests.length === 1) void held.then(() => res.writeHead(503).end());
      else res.writeHead(204).end();
    });
    const slowId = (await insertEndpoint(fleet.db.db, { url: slow.url, eventTypes: ['hand2'] })).id;
    const worker = fleet.startWorker();
    const sent = await fleet.producer.send({ eventType: 'hand2', payload: { hand: 2 } });
    await fanOutCompleted(sent.id);
    release();
    expect(await fleet.waitForDelivery(deliveryJobId(sent.id, slowId))).toEqual({
      state: 'completed',
    });
    expect(slow.requests).toHaveLength(2);
    // The same bytes on both attempts: the payload in its envelope.
    expect(new Set(slow.requests.map((r) => r.body)).size).toBe(1);
    expect(JSON.parse(slow.requests[0]!.body)).toMatchObject({ type: 'hand2', data: { hand: 2 } });
    await fleet.flushRecorders();
    const attempts = await fleet.db.sql<{ attempt_number: number; outcome: string }[]>`
      select attempt_number, outcome from attempts
      where message_id = ${sent.id} order by attempted_at`;
    expect(attempts).toEqual([
      { attempt_number: 1, outcome: 'retrying' },
      { attempt_number: 2, outcome: 'succeeded' },
    ]);
    await worker.close();
  });

  it('delivers a message to 10,000 endpoints, once each, never above the attempt bound', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const fast = await receiver((_request, res) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setImmediate(() => {
        inFlight -= 1;
        res.writeHead(204).end();
      });
    });
    const template = await insertEndpoint(fleet.db.db, { url: fast.url, eventTypes: ['big'] });
    await fleet.db.sql`
      insert into endpoints (id, url, secret, event_types)
      select 'ep_big_' || g, ${`${fast.url}/`} || g, ${template.secret}, '{big}'
      from generate_series(1, 9999) g`;
    const worker = fleet.startWorker({ HOOKFLEET_CONCURRENCY: '50' });
    const sent = await fleet.producer.send({ eventType: 'big', payload: { big: true } });
    expect(sent.deliveries).toBe(10_000);
    await fanOutCompleted(sent.id);
    const ends = await Promise.all(
      sent.endpointIds.map((id) => fleet.waitForDelivery(deliveryJobId(sent.id, id))),
    );
    expect(ends.filter((end) => end.state !== 'completed')).toEqual([]);
    expect(new Set(fast.requests.map((r) => r.path)).size).toBe(10_000);
    expect(fast.requests).toHaveLength(10_000);
    expect(maxInFlight).toBeLessThanOrEqual(50);
    await worker.close();
  }, 120_000);
});
