/**
 * Rolling upgrade from one job per delivery (each carrying the body) to one job per message:
 * new workers still deliver the jobs old producers queued, and messages stored before
 * `messages.body` existed are sent as they always were.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { findMessage } from '../../src/db/messages.js';
import type { Queue } from 'bullmq';
import { DELIVERY_JOB, deliveryJobId, type DeliveryJobData } from '../../src/jobs.js';
import { redeliverMessage } from '../../src/producer/redeliver.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let receiver: Receiver;

beforeAll(async () => {
  fleet = await createTestFleet();
  // The first request of each delivery fails, so retries of old jobs are covered too.
  const seen = new Set<string>();
  receiver = await startReceiver((request, _index, res) => {
    const key = String(request.headers['webhook-id']);
    if (seen.has(key)) return void res.writeHead(204).end();
    seen.add(key);
    res.writeHead(500).end();
  });
  fleet.startWorker();
});
afterAll(async () => {
  await fleet.close();
  await receiver.close();
});

/** A message row as the old producer stored it: payload only, no body. */
async function oldMessage(id: string, endpointId: string, payload: unknown): Promise<void> {
  await fleet.db.sql`
    insert into messages (id, event_type, payload, endpoint_ids, enqueued_at)
    values (${id}, 'old.event', ${JSON.stringify(payload)}::jsonb, ${`{${endpointId}}`}::text[], now())`;
}

describe('after a rolling upgrade', () => {
  it('delivers a delivery job queued by an old producer, with the body it carries, retries included', async () => {
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    // Key order and spacing jsonb would not keep: the job's bytes are what must be sent.
    const body = '{"z":1, "a":[1,2]}';
    await oldMessage('msg_old_format', endpoint.id, { z: 1, a: [1, 2] });
    await fleet.producer.deliveriesQueue.add(
      DELIVERY_JOB,
      {
        messageId: 'msg_old_format',
        endpointId: endpoint.id,
        eventType: 'old.event',
        body,
        enqueuedAtMs: Date.now(),
      },
      {
        jobId: deliveryJobId('msg_old_format', endpoint.id),
        attempts: 1000,
        backoff: { type: 'hookfleet' },
      },
    );
    const end = await fleet.waitForDelivery(deliveryJobId('msg_old_format', endpoint.id));
    expect(end).toEqual({ state: 'completed' });
    const requests = receiver.requests.filter((r) => r.headers['webhook-id'] === 'msg_old_format');
    expect(requests.map((r) => r.body)).toEqual([body, body]);
  });

  it('redelivers a message stored before the body column, re-serialising its payload', async () => {
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    await oldMessage('msg_old_redeliver', endpoint.id, { n: 7, s: 'x' });
    const message = await findMessage(fleet.db.db, 'msg_old_redeliver');
    expect(message?.body).toBeNull();
    const queue = fleet.producer.deliveriesQueue as Queue<DeliveryJobData>;
    const [redelivery] = await redeliverMessage(queue, message!, [endpoint.id]);
    expect(redelivery?.action).toBe('enqueued');
    expect(await fleet.waitForDelivery(redelivery!.jobId)).toEqual({ state: 'completed' });
    const requests = receiver.requests.filter(
      (r) => r.headers['webhook-id'] === 'msg_old_redeliver',
    );
    expect(requests.map((r) => r.body)).toEqual([
      JSON.stringify(message!.payload),
      JSON.stringify(message!.payload),
    ]);
  });
});
