import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ownerQueueKey, ownerQueueLeaver, takeOwnerPlaces } from '../../src/delivery/ownerQueue.js';
import {
  deleteQueueKeys,
  recordCommandsSent,
  TEST_REDIS_URL,
  testQueuePrefix,
} from '../helpers/testRedis.js';

const prefix = testQueuePrefix();
const redis = new Redis(TEST_REDIS_URL);

afterAll(async () => {
  await deleteQueueKeys(prefix);
  await redis.quit();
});

describe("a worker giving back owners' places in the queue", () => {
  it('sends the fan-outs finished in one turn as one call per owner, and the counts end at zero', async () => {
    await takeOwnerPlaces(redis, prefix, 100, ['acct_a', 'acct_a', 'acct_a', 'acct_b', null]);
    const sent = recordCommandsSent(redis);
    const leave = ownerQueueLeaver(redis, prefix);
    // Redis learns the script on its first use (NOSCRIPT, then it is sent again).
    await takeOwnerPlaces(redis, prefix, 100, ['acct_warm_up']);
    await leave('acct_warm_up');
    sent.length = 0;

    await Promise.all(['acct_a', 'acct_b', 'acct_a', null, 'acct_a'].map((owner) => leave(owner)));

    expect(sent).toEqual(['evalsha', 'evalsha', 'evalsha']);
    for (const owner of ['acct_a', 'acct_b', null]) {
      expect(await redis.exists(ownerQueueKey(prefix, owner))).toBe(0);
    }
  });

  it('never takes a count below zero', async () => {
    const leave = ownerQueueLeaver(redis, prefix);
    await takeOwnerPlaces(redis, prefix, 100, ['acct_c']);
    await Promise.all([leave('acct_c'), leave('acct_c'), leave('acct_c')]);
    expect(await redis.exists(ownerQueueKey(prefix, 'acct_c'))).toBe(0);
    await takeOwnerPlaces(redis, prefix, 100, ['acct_c']);
    expect(await redis.get(ownerQueueKey(prefix, 'acct_c'))).toBe('1');
  });
});
