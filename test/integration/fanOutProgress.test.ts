import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkerRedis, redisNode } from '../../src/redis.js';
import { createFanOutProgress } from '../../src/worker/fanOutProgress.js';
import {
  deleteQueueKeys,
  recordCommandsSent,
  TEST_REDIS_URL,
  testQueuePrefix,
} from '../helpers/testRedis.js';

const prefix = testQueuePrefix();
// A connection of its own, whose commands the test counts as they are sent.
const redis = createWorkerRedis(redisNode(TEST_REDIS_URL), 'test:fan-out-progress') as Redis;
const sent = recordCommandsSent(redis);
const progress = createFanOutProgress(redis, prefix);

afterAll(async () => {
  await deleteQueueKeys(prefix);
  await redis.quit();
});

describe('fan-out progress', () => {
  it("sends one turn's marks of several messages as one call, and a later run sees them", async () => {
    for (const id of ['msg_a', 'msg_b']) await progress.finished(id);
    // Redis learns the script on its first use (NOSCRIPT, then the script is sent again).
    await progress.mark('msg_warm', 0);
    sent.length = 0;
    await Promise.all([
      progress.mark('msg_a', 0),
      progress.mark('msg_b', 9),
      progress.mark('msg_a', 3),
      progress.mark('msg_b', 10_000),
    ]);
    expect(sent).toEqual(['evalsha']);

    const a = await progress.finished('msg_a');
    const b = await progress.finished('msg_b');
    expect([0, 1, 2, 3].map(a)).toEqual([true, false, false, true]);
    expect([8, 9, 10, 9_999, 10_000].map(b)).toEqual([false, true, false, false, true]);
    // The bitmap keeps the expiry it was made with.
    expect(await redis.pttl(`${prefix}:fan-out:msg_a`)).toBeGreaterThan(0);
  });

  it("fails only the marks of a message whose bitmap Redis refuses, not the others' of the same call", async () => {
    await progress.finished('msg_good');
    // A key of the wrong type makes that message's part of the script fail.
    await redis.hset(`${prefix}:fan-out:msg_broken`, 'not', 'a bitmap');
    const [good, broken] = await Promise.allSettled([
      progress.mark('msg_good', 1),
      progress.mark('msg_broken', 1),
    ]);
    expect(good.status).toBe('fulfilled');
    expect(broken).toMatchObject({ status: 'rejected', reason: { message: /WRONGTYPE/ } });
    expect((await progress.finished('msg_good'))(1)).toBe(true);
  });
});
