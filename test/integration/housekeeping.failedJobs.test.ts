/**
 * Jobs that BullMQ failed without the worker writing a final 'failed' attempt (failed for
 * stalling, a fan-out that never reached some endpoints, a final row lost in a crash) become
 * visible to `failed list`, recover and the health page, and replayable.
 */
import { oneShard } from '../../src/queueShards.js';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { listFailedDeliveries } from '../../src/db/failedDeliveries.js';
import { insertFannedOutMessages, markMessagesEnqueued } from '../../src/db/messages.js';
import { newId } from '../../src/ids.js';
import {
  DELIVERIES_QUEUE,
  DELIVERY_JOB_OPTIONS,
  MESSAGE_JOB_OPTIONS,
  MESSAGES_QUEUE,
  RETRY_JOB,
  FAN_OUT_JOB,
  deliveryJobId,
} from '../../src/jobs.js';
import { replayFailedDeliveries } from '../../src/producer/replayFailed.js';
import type { Housekeeping } from '../../src/worker/housekeeping.js';
import { openHousekeeping, type HousekeepingRig } from '../helpers/housekeepingRig.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { TEST_REDIS_URL, deleteQueueKeys } from '../helpers/testRedis.js';

let db: TestDatabase;
let redis: Redis;
let prefix: string;
let housekeeping: Housekeeping;
let rig: HousekeepingRig;
let deliveries: Queue;
let messages: Queue;

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  await redis.quit();
  await db.drop();
});
beforeEach(async () => {
  await db.sql`truncate endpoints, messages, attempts`;
  rig = openHousekeeping(db);
  ({ prefix, housekeeping } = rig);
  deliveries = new Queue(DELIVERIES_QUEUE, { connection: redis, prefix });
  messages = new Queue(MESSAGES_QUEUE, { connection: redis, prefix });
});
afterEach(async () => {
  await deliveries.close();
  await messages.close();
  await rig.close();
  await deleteQueueKeys(prefix);
});

async function endpoint(): Promise<string> {
  return (await insertEndpoint(db.db, { url: 'https://receiver.example/hook' })).id;
}

async function message(endpointIds: string[]): Promise<string> {
  const id = newId('msg');
  await insertFannedOutMessages(db.sql, [
    { id, eventType: 'order.paid', payloadJson: '{"n":1}', onlyIds: endpointIds },
  ]);
  await markMessagesEnqueued(db.sql, [id]);
  return id;
}

async function attempt(
  messageId: string,
  endpointId: string,
  outcome: string,
  secondsAgo: number,
): Promise<void> {
  await db.sql`insert into attempts (message_id, endpoint_id, attempt_number, attempted_at,
                                     outcome, duration_ms, error)
               values (${messageId}, ${endpointId}, 1,
                       now() - make_interval(secs => ${secondsAgo}), ${outcome}, 5, 'HTTP 500')`;
}

/**
 * Takes the job as a worker would and fails it with BullMQ's own API, as BullMQ's stalled-job
 * check does, with no attempt row written; dated a minute ago, past the scan's grace.
 */
async function failAsBullMqDoes(queue: Queue, jobId: string, reason: string): Promise<void> {
  const worker = new Worker(queue.name, null, { connection: redis, prefix, autorun: false });
  try {
    const token = 'test-token';
    const job = await worker.getNextJob(token);
    expect(job?.id).toBe(jobId);
    // Unrecoverable: failed at once whatever attempts are left, as the stalled-job check does.
    await job.moveToFailed(new UnrecoverableError(reason), token, false);
  } finally {
    await worker.close();
  }
  const minuteAgo = Date.now() - 60_000;
  await redis.zadd(queue.keys.failed!, minuteAgo, jobId);
  await redis.hset(queue.toKey(jobId), 'finishedOn', minuteAgo);
}

describe('housekeeping: failed jobs without a final attempt', () => {
  it('lists and replays a delivery job BullMQ failed for stalling', async () => {
    const ep = await endpoint();
    const msg = await message([ep]);
    await attempt(msg, ep, 'retrying', 600);
    const jobId = deliveryJobId(msg, ep);
    await deliveries.add(
      RETRY_JOB,
      { messageId: msg, endpointId: ep, attemptsBefore: 1, enqueuedAtMs: Date.now() },
      { ...DELIVERY_JOB_OPTIONS, jobId },
    );
    await failAsBullMqDoes(deliveries, jobId, 'job stalled more than allowable limit');
    // What the tools saw before: nothing.
    expect(await listFailedDeliveries(db.db, { endpointId: ep })).toEqual([]);

    expect(await housekeeping.run()).toMatchObject({ failuresRecorded: 1 });

    const [failed] = await listFailedDeliveries(db.db, { endpointId: ep });
    expect(failed).toMatchObject({ messageId: msg, endpointId: ep, statusCode: null });
    expect(failed!.error).toMatch(/not attempted again: job stalled more than allowable limit/);
    expect(failed!.attemptNumber).toBeGreaterThanOrEqual(2);
    // Once: the next run finds it written.
    expect(await housekeeping.run()).toMatchObject({ failuresRecorded: 0 });
    await db.sql`delete from attempts where outcome = 'failed'`;
    await redis.del(`${prefix}:maintenance:failed-cursor:${DELIVERIES_QUEUE}`);
    await housekeeping.run();
    expect(await listFailedDeliveries(db.db, { endpointId: ep })).toHaveLength(1);

    const replay = await replayFailedDeliveries(
      { db: db.db, queue: oneShard(deliveries) },
      { endpointId: ep, since: new Date(Date.now() - 3_600_000) },
    );
    expect(replay).toMatchObject({ total: 1, retried: 1 });
    expect(await (await deliveries.getJob(jobId))!.getState()).toBe('waiting');
  });

  it('lists the deliveries a failed fan-out never reached, and only those', async () => {
    const [reached, postponed, unreached] = [await endpoint(), await endpoint(), await endpoint()];
    const msg = await message([reached, postponed, unreached]);
    await attempt(msg, reached, 'succeeded', 600);
    // A delivery with a job of its own ends in an outcome by itself.
    await deliveries.add(
      RETRY_JOB,
      { messageId: msg, endpointId: postponed, attemptsBefore: 0, enqueuedAtMs: Date.now() },
      { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(msg, postponed), delay: 60_000 },
    );
    await messages.add(
      FAN_OUT_JOB,
      { messageId: msg, enqueuedAtMs: Date.now() },
      { ...MESSAGE_JOB_OPTIONS, jobId: msg },
    );
    await failAsBullMqDoes(messages, msg, 'job stalled more than allowable limit');

    expect(await housekeeping.run()).toMatchObject({ failuresRecorded: 1 });

    const failed = await listFailedDeliveries(db.db, {});
    expect(failed.map((row) => row.endpointId)).toEqual([unreached]);
    expect(failed[0]!.error).toMatch(/stalled/);
  });

  it('writes nothing for a failed job whose worker wrote its final attempt', async () => {
    const ep = await endpoint();
    const msg = await message([ep]);
    await attempt(msg, ep, 'failed', 90);
    const jobId = deliveryJobId(msg, ep);
    await deliveries.add(
      RETRY_JOB,
      { messageId: msg, endpointId: ep, attemptsBefore: 1, enqueuedAtMs: Date.now() },
      { ...DELIVERY_JOB_OPTIONS, jobId },
    );
    await failAsBullMqDoes(deliveries, jobId, 'HTTP 410');

    expect(await housekeeping.run()).toMatchObject({ failuresRecorded: 0 });
    expect(await listFailedDeliveries(db.db, { endpointId: ep })).toHaveLength(1);
  });
});
