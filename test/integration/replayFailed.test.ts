import type { ShardedQueue } from '../../src/queueShards.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { listFailedDeliveries, listFailedDeliveryPage } from '../../src/db/failedDeliveries.js';
import { deliveryJobId, type DeliveryJobData } from '../../src/jobs.js';
import { replayFailedDeliveries } from '../../src/producer/replayFailed.js';
import type { Queue } from 'bullmq';
import { startReceiver, type Receiver, type Responder } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// A real worker with the test fleet's short retry schedule (20 ms x 3): a delivery to a receiver
// answering 500 fails for good within a fraction of a second. The circuit breaker is off so that
// a run of failures does not hold back the replayed deliveries.
let fleet: TestFleet;
let queue: Queue<DeliveryJobData>;
let healthy: Receiver;
let broken: Receiver;
let replayed: string; // the endpoint that gets fixed and replayed

const answer =
  (status: number): Responder =>
  (_request, _index, res) => {
    res.writeHead(status).end();
  };
const fail500 = answer(500);

beforeAll(async () => {
  fleet = await createTestFleet({ HOOKFLEET_CIRCUIT_FAILURES: '0' });
  queue = fleet.producer.deliveriesQueue as Queue<DeliveryJobData>;
  healthy = await startReceiver(fail500);
  broken = await startReceiver(fail500);
  replayed = (await insertEndpoint(fleet.db.db, { url: healthy.url, eventTypes: ['replay.a'] })).id;
  // Another failing endpoint, whose failures must be left alone.
  await insertEndpoint(fleet.db.db, { url: broken.url, eventTypes: ['replay.b'] });
  fleet.startWorker();
});
afterAll(async () => {
  await fleet.close();
  await healthy.close();
  await broken.close();
});

/** Sends `count` messages of `eventType` and waits until each delivery has failed for good. */
async function sendAndFail(eventType: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const sent = await fleet.producer.send({ eventType, payload: { n } });
    ids.push(...sent.endpointIds.map((endpointId) => deliveryJobId(sent.id, endpointId)));
    for (const endpointId of sent.endpointIds) {
      const end = await fleet.waitForDelivery(deliveryJobId(sent.id, endpointId));
      expect(end.state).toBe('failed');
    }
  }
  await fleet.flushRecorders();
  return ids;
}

describe('replayFailedDeliveries', () => {
  it('replays the failures since a time, page by page, leaving older ones and other endpoints alone', async () => {
    const older = await sendAndFail('replay.a', 2);
    const otherJobs = await sendAndFail('replay.b', 2);
    // The first two failed "three hours ago".
    await fleet.db.sql`update attempts set attempted_at = attempted_at - interval '3 hours'
      where endpoint_id = ${replayed}`;
    const recent = await sendAndFail('replay.a', 7);
    const since = new Date(Date.now() - 3600_000);

    const listed = await listFailedDeliveries(fleet.db.db, { endpointId: replayed, since });
    expect(listed.map((f) => deliveryJobId(f.messageId, f.endpointId)).sort()).toEqual(
      [...recent].sort(),
    );
    expect(listed[0]).toMatchObject({
      endpointId: replayed,
      eventType: 'replay.a',
      attemptNumber: 4,
      statusCode: 500,
      error: expect.stringContaining('500'),
    });
    expect(listed.map((f) => f.failedAt.getTime())).toEqual(
      listed.map((f) => f.failedAt.getTime()).sort((a, b) => b - a),
    );
    expect(await listFailedDeliveries(fleet.db.db, { endpointId: replayed })).toHaveLength(9);
    expect(await listFailedDeliveries(fleet.db.db, {})).toHaveLength(11);

    healthy.respondWith(answer(200));
    const before = broken.requests.length;
    const delivered = fleet.nextCompletions(recent);
    const progress: [number, number][] = [];
    const result = await replayFailedDeliveries(
      { db: fleet.db.db, queue: fleet.producer.deliveries as ShardedQueue<DeliveryJobData> },
      {
        endpointId: replayed,
        since,
        pageSize: 3,
        onProgress: (done, total) => progress.push([done, total]),
      },
    );

    expect(result).toEqual({ total: 7, retried: 7, enqueued: 0, pending: 0 });
    expect(progress).toEqual([
      [0, 7],
      [3, 7],
      [6, 7],
      [7, 7],
    ]);
    await delivered;
    await fleet.flushRecorders();
    expect(await listFailedDeliveries(fleet.db.db, { endpointId: replayed, since })).toEqual([]);
    // The older failures are still there, and so are the other endpoint's.
    const left = await listFailedDeliveries(fleet.db.db, {});
    expect(left.map((f) => deliveryJobId(f.messageId, f.endpointId)).sort()).toEqual(
      [...older, ...otherJobs].sort(),
    );
    for (const jobId of otherJobs) expect(await queue.getJobState(jobId)).toBe('failed');
    expect(broken.requests.length).toBe(before);
  });

  it('adds a new job when the failed one is gone (once, however often it runs), and leaves a delivery queued meanwhile alone', async () => {
    healthy.respondWith(fail500);
    const [gone, queued] = await sendAndFail('replay.a', 2);
    const since = new Date(Date.now() - 60_000);
    // Paused, so the worker cannot take the jobs before the replay has looked at them.
    await queue.pause();
    await (await queue.getJob(gone!))!.remove();
    await (await queue.getJob(queued!))!.retry('failed'); // replayed by someone else meanwhile

    const result = await replayFailedDeliveries(
      { db: fleet.db.db, queue: fleet.producer.deliveries as ShardedQueue<DeliveryJobData> },
      { endpointId: replayed, since },
    );

    expect(result).toEqual({ total: 2, retried: 0, enqueued: 1, pending: 1 });
    // Run again before any worker has tried: the new job is found, not added a second time.
    const again = await replayFailedDeliveries(
      { db: fleet.db.db, queue: fleet.producer.deliveries as ShardedQueue<DeliveryJobData> },
      { endpointId: replayed, since },
    );
    expect(again).toEqual({ total: 2, retried: 0, enqueued: 0, pending: 2 });
    expect(
      (await queue.getWaiting()).filter((job) => job.id!.startsWith(`${gone}.r`)),
    ).toHaveLength(1);
    healthy.respondWith(answer(204));
    const delivered = fleet.nextCompletions([queued!, (jobId) => jobId.startsWith(`${gone}.r`)]);
    await queue.resume();
    await delivered;
    await fleet.flushRecorders();
    expect(await listFailedDeliveries(fleet.db.db, { endpointId: replayed, since })).toEqual([]);
  });

  it('pages through failures that share a millisecond without skipping or repeating one', async () => {
    // Written by SQL rather than a worker: microseconds apart, which a JS Date cannot tell apart.
    const ids = Array.from({ length: 7 }, (_, n) => `msg_paging${n}`);
    for (const [n, id] of ids.entries()) {
      await fleet.db.sql`insert into messages (id, event_type, payload, endpoint_ids)
        values (${id}, 'replay.paging', '{}'::jsonb, '{ep_paging}')`;
      await fleet.db.sql`insert into attempts
          (message_id, endpoint_id, attempt_number, attempted_at, outcome, duration_ms)
        values (${id}, 'ep_paging', 1,
          date_trunc('milliseconds', now()) - interval '1 minute' + ${(n % 3) * 100} * interval '1 microsecond',
          'failed', 1)`;
    }
    const seen: string[] = [];
    let after;
    do {
      const page = await listFailedDeliveryPage(fleet.db.db, {
        endpointId: 'ep_paging',
        limit: 2,
        after,
      });
      seen.push(...page.deliveries.map((d) => d.messageId));
      after = page.next;
    } while (after);
    expect([...seen].sort()).toEqual(ids);
    expect(seen).toEqual(
      (await listFailedDeliveries(fleet.db.db, { endpointId: 'ep_paging' })).map(
        (d) => d.messageId,
      ),
    );
  });
});
