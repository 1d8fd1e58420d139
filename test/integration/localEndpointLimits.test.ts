/**
 * Trial mode's endpoint limits (one process's memory) against the fleet's (the .lua scripts on
 * Redis): the same long, seeded run of admissions and releases over a moving clock goes to both
 * stores with the same keys and arguments, and every answer (a busy refusal's wait aside) and every
 * circuit state must match.
 * The behaviours themselves are spelled out in endpointLimits.test.ts; this holds the port to them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpointStateKey,
  MAX_PROMOTED_ON_CLOSE,
  redisLimitsStore,
  type LimitKeys,
  type LimitsStore,
} from '../../src/delivery/endpointLimits.js';
import {
  createLocalLimitsState,
  localLimitsStore,
} from '../../src/delivery/localEndpointLimits.js';
import { createLimitsRedis, redisNode } from '../../src/redis.js';
import { deleteQueueKeys, TEST_REDIS_URL, testQueuePrefix } from '../helpers/testRedis.js';

const prefix = testQueuePrefix();
const redis = createLimitsRedis(redisNode(TEST_REDIS_URL), 'test:local-endpoint-limits');

beforeAll(() => redis.ping());
afterAll(async () => {
  await deleteQueueKeys(prefix);
  await redis.quit();
});

/** A small deterministic generator (mulberry32), so a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const keysOf = (id: string): LimitKeys => [
  endpointStateKey(prefix, id),
  `${prefix}:endpoints:${id}:in-flight`,
  `${prefix}:endpoints:${id}:postponed`,
];

describe('the endpoint limits kept in memory (trial mode)', () => {
  it.each([1, 2, 3])('answers as the Redis scripts do, step for step (seed %i)', async (seed) => {
    const stores: LimitsStore[] = [
      redisLimitsStore(redis, prefix),
      localLimitsStore(createLocalLimitsState(), prefix),
    ];
    const next = random(seed);
    const endpoints = ['a', 'b', 'c'].map((name) => `ep_${seed}_${name}`);
    const held: { endpointId: string; token: string; admittedAt: number }[] = [];
    let now = 1_000_000;
    let tokens = 0;
    const seen = new Set<string>();
    const [maxInFlight, threshold, cooldownMs, leaseMs] = [3, 2, 1000, 4000];

    for (let step = 0; step < 400; step++) {
      now += Math.floor(next() * 900);
      const endpointId = endpoints[Math.floor(next() * endpoints.length)]!;
      let answers: unknown[];
      if (held.length === 0 || next() < 0.5) {
        const token = `t${++tokens}`;
        const jobId = next() < 0.5 ? `job${tokens}` : '';
        // No requests-per-second limit; the busy waits' bounds and first spacing as the worker's.
        const args = [now, token, leaseMs, maxInFlight, 1, jobId, 86_400_000, 0, 600_000, 10, 50];
        const admitted = await Promise.all(stores.map((s) => s.admit(keysOf(endpointId), args)));
        // A busy endpoint's delivery is told when to come back differently: Redis hands out places
        // in the endpoint's queue of postponed deliveries, the memory store keeps the earlier wait
        // of one and a half attempt durations. Whether it is refused must agree.
        answers = admitted.map((answer) => (answer[0] === 'busy' ? ['busy'] : answer));
        if ((answers[0] as [string])[0] === 'admitted')
          held.push({ endpointId, token, admittedAt: now });
      } else {
        // Some permits are never released (a worker that died); their leases run out.
        const permit = held.splice(Math.floor(next() * held.length), 1)[0]!;
        const verdict = ['succeeded', 'failed', 'none'][Math.floor(next() * 3)]!;
        const args = [
          permit.token,
          verdict,
          now,
          threshold,
          cooldownMs,
          5000,
          86_400_000,
          maxInFlight,
          now - permit.admittedAt,
          MAX_PROMOTED_ON_CLOSE,
        ];
        const replies = await Promise.all(
          stores.map((s) => s.release(keysOf(permit.endpointId), args)),
        );
        // Redis hands the postponed deliveries back in no particular order.
        answers = replies.map(([transition, ...postponed]) => [transition, ...postponed.sort()]);
      }
      expect(answers[1], `step ${step}`).toEqual(answers[0]);
      seen.add((answers[0] as string[])[0]!);
      const states = await Promise.all(stores.map((s) => s.read(endpoints, now)));
      expect(states[1], `step ${step}`).toEqual(states[0]);
    }
    // The run went through every answer the scripts give, or it proved little.
    expect([...seen].sort()).toEqual(
      ['admitted', 'busy', 'closed', 'half-open', 'none', 'open', 'opened', 'reopened'].sort(),
    );
  });
});
