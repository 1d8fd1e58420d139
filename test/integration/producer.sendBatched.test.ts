/**
 * Producer.send through the group commit (messageBatcher.ts): concurrent sends share a
 * batch, and each caller still gets its own outcome: stored and enqueued, refused alone for what
 * its message holds, or told Redis refused the batch (with its own message id to resume).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbClient } from '../../src/db/client.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { findMessage } from '../../src/db/messages.js';
import { HookfleetError } from '../../src/errors.js';
import { messageJobId } from '../../src/jobs.js';
import { Producer } from '../../src/producer/producer.js';
import { redisNode } from '../../src/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redisServer.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// No worker runs in this file: jobs stay in the queue where the test can look at them.
let fleet: TestFleet;
beforeAll(async () => {
  fleet = await createTestFleet();
});
afterAll(async () => {
  await fleet.close();
});

const url = 'http://127.0.0.1:9/hook';
const newEndpoint = async (eventType: string) =>
  (await insertEndpoint(fleet.db.db, { url, eventTypes: [eventType] })).id;

/** The test database's client, counting the statements that insert messages. */
function countingInserts(): { dbClient: DbClient; inserts: () => number } {
  let inserts = 0;
  const sql = new Proxy(fleet.db.sql, {
    apply(target, thisArg, args: unknown[]) {
      const strings = args[0] as readonly string[] | undefined;
      if (Array.isArray(strings) && strings.join('').includes('insert into messages')) inserts++;
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
  return { dbClient: { ...fleet.db, sql }, inserts: () => inserts };
}

describe('Producer.send, many at once', () => {
  it('stores and enqueues every one of them in a few statements, each with its own fan-out', async () => {
    const a = await newEndpoint('batch.a');
    const b = await newEndpoint('batch.b');
    const { dbClient, inserts } = countingInserts();
    const producer = new Producer({ config: fleet.config, dbClient });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, n) =>
        producer.send({ eventType: n % 2 ? 'batch.a' : 'batch.b', payload: { n } }),
      ),
    ).finally(() => producer.close());
    // Sent in one tick, they share a batch (at most two if the first one left early).
    expect(inserts()).toBeGreaterThanOrEqual(1);
    expect(inserts()).toBeLessThanOrEqual(2);
    expect(new Set(results.map((r) => r.id)).size).toBe(40);
    for (const [n, result] of results.entries()) {
      const endpointId = n % 2 ? a : b;
      expect(result).toMatchObject({ endpointIds: [endpointId], deliveries: 1, duplicate: false });
      const job = await fleet.producer.messagesQueue.getJob(messageJobId(result.id));
      expect(job?.data).toMatchObject({ messageId: result.id });
      const message = await findMessage(fleet.db.db, result.id);
      expect(message?.enqueuedAt).not.toBeNull();
      expect(message?.body).toBe(JSON.stringify({ n }));
      expect(message?.payload).toEqual({ n });
    }
  });

  it('keeps each send’s endpointIds narrowing to itself', async () => {
    const [a, b, c] = [
      await newEndpoint('batch.narrow'),
      await newEndpoint('batch.narrow'),
      await newEndpoint('batch.narrow'),
    ];
    const [onlyA, onlyBC, all] = await Promise.all([
      fleet.producer.send({ eventType: 'batch.narrow', payload: 1, endpointIds: [a] }),
      fleet.producer.send({ eventType: 'batch.narrow', payload: 2, endpointIds: [c, b] }),
      fleet.producer.send({ eventType: 'batch.narrow', payload: 3 }),
    ]);
    expect(onlyA.endpointIds).toEqual([a]);
    expect(new Set(onlyBC.endpointIds)).toEqual(new Set([b, c]));
    expect(new Set(all.endpointIds)).toEqual(new Set([a, b, c]));
  });

  it('enqueues every job of a batch larger than one Redis pipeline (several addBulk calls)', async () => {
    // 300 messages sent in one tick share a batch (or two) of 300 fan-out jobs, which spans a
    // full pipeline of 200 and a partial one.
    await newEndpoint('batch.wide');
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, n) =>
        fleet.producer.send({ eventType: 'batch.wide', payload: { n } }),
      ),
    );
    // Past the owner's share of the queue (100 by default), jobs wait with a priority.
    const waiting = await fleet.producer.messagesQueue.getJobs(['waiting', 'prioritized'], 0, -1);
    const ids = new Set(waiting.map((job) => job.id));
    for (const result of results) expect(ids.has(messageJobId(result.id))).toBe(true);
  });

  it('fails only the send PostgreSQL cannot store, not the others in its batch', async () => {
    const endpoint = await newEndpoint('batch.poison');
    const sends = [0, 1, 2, 3].map((n) =>
      fleet.producer.send({
        eventType: 'batch.poison',
        // jsonb refuses \u0000, so this one message fails its INSERT.
        payload: n === 2 ? { text: 'nul \u0000 inside' } : { n },
      }),
    );
    const outcomes = await Promise.allSettled(sends);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') expect(outcome.value.endpointIds).toEqual([endpoint]);
    }
  });

  it('refuses sends past maxQueuedSends at once with 503 overloaded, storing nothing for them', async () => {
    const producer = new Producer({ config: fleet.config, dbClient: fleet.db, maxQueuedSends: 1 });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, n) =>
          producer.send({ eventType: 'batch.overload', payload: { n } }),
        ),
      );
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.length).toBeLessThan(10);
      for (const outcome of refused) {
        expect(outcome.reason).toBeInstanceOf(HookfleetError);
        expect(outcome.reason).toMatchObject({ code: 'overloaded', status: 503 });
      }
      const [row] = await fleet.db.sql<{ stored: number }[]>`
        select count(*)::int as stored from messages where event_type = 'batch.overload'`;
      expect(row!.stored).toBe(10 - refused.length);
    } finally {
      await producer.close();
    }
  });
});

describe('Producer.send when Redis refuses the batch', () => {
  let redis: RedisServer;
  let admin: Redis;
  let producer: Producer;
  beforeAll(async () => {
    redis = await startRedisServer();
    admin = new Redis(redis.url);
    producer = new Producer({
      config: { ...fleet.config, redisUrl: redis.url, redis: redisNode(redis.url) },
      dbClient: fleet.db,
    });
    producer.deliveriesQueue.on('error', () => {});
  });
  afterAll(async () => {
    await producer?.close();
    await admin?.quit();
    await redis?.close();
  });

  it('tells every caller in the batch, naming its own stored message, and a resend resumes it', async () => {
    const endpoint = await newEndpoint('batch.oom');
    // Connected and ready, but refusing writes: every job of the batch fails to be added.
    await producer.messagesQueue.getJobCounts();
    await admin.config('SET', 'maxmemory', '1');
    const inputs = [0, 1, 2].map((n) => ({
      eventType: 'batch.oom',
      payload: { n },
      idempotencyKey: `batch-oom-${n}`,
    }));
    const keyless = { eventType: 'batch.oom', payload: { keyless: true } };
    const outcomes = await Promise.allSettled(
      [...inputs, keyless].map((input) => producer.send(input)),
    );
    const ids: string[] = [];
    for (const outcome of outcomes.slice(0, 3)) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason as HookfleetError;
      expect(error).toMatchObject({ code: 'redis_unavailable', status: 503 });
      const id = /message (msg_\w+) was stored but not enqueued/.exec(error.message)?.[1];
      expect(id).toBeDefined();
      ids.push(id!);
      expect((await findMessage(fleet.db.db, id!))?.enqueuedAt).toBeNull();
    }
    expect(new Set(ids).size).toBe(3);
    // The key-less caller may only send again as a new message, so nothing of its send is kept
    // (the reconciler would otherwise deliver it as well).
    const keylessError = (outcomes[3] as PromiseRejectedResult).reason as HookfleetError;
    expect(keylessError).toMatchObject({ code: 'redis_unavailable', status: 503 });
    expect(keylessError.message).toMatch(/nothing was stored/);
    const [row] = await fleet.db.sql<{ count: number }[]>`
      select count(*)::int as count from messages where payload = '{"keyless": true}'::jsonb`;
    expect(row?.count).toBe(0);

    await admin.config('SET', 'maxmemory', '0');
    const resumed = await Promise.all(inputs.map((input) => producer.send(input)));
    expect(resumed.map((r) => r.id)).toEqual(ids.slice(0, 3));
    for (const id of ids.slice(0, 3)) {
      expect(await producer.messagesQueue.getJob(messageJobId(id))).toBeDefined();
      expect((await findMessage(fleet.db.db, id))?.endpointIds).toEqual([endpoint]);
      expect((await findMessage(fleet.db.db, id))?.enqueuedAt).not.toBeNull();
    }
  });
});
