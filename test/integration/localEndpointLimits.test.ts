/**
 * Trial mode's endpoint limits (one process's memory) against the fleet's (the .lua scripts on
 * Redis): the same long, seeded run of admissions and releases over a moving clock goes to both
 * stores with the same keys and arguments, and every answer (a refused delivery's wait and spread
 * included) and every circuit state must match.
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

/**
 * The endpoints of a run and the arguments the worker would pass for each: its in-flight cap,
 * whether the breaker is on, its requests-per-second limit (a function: an endpoint's limit can
 * be set and removed), and how far ahead a refused delivery's place may be. The clock moves by
 * tens of milliseconds, so every endpoint is asked several times per second: enough to fill its
 * in-flight cap, go over its rate and push its queue of postponed deliveries past `maxWaitMs`.
 */
const profiles = [
  { name: 'capped', maxInFlight: 3, breakerOn: 1, rate: () => 0, maxWaitMs: 600_000 },
  // A third of a second apart: intervals and places that are not whole milliseconds.
  { name: 'rated', maxInFlight: 3, breakerOn: 1, rate: () => 3, maxWaitMs: 3_000 },
  { name: 'rate-only', maxInFlight: 0, breakerOn: 0, rate: () => 7, maxWaitMs: 600_000 },
  { name: 'slow-rate', maxInFlight: 0, breakerOn: 0, rate: () => 1, maxWaitMs: 1_500 },
  { name: 'short-queue', maxInFlight: 2, breakerOn: 1, rate: () => 0, maxWaitMs: 1_500 },
  {
    name: 'rate-changing',
    maxInFlight: 3,
    breakerOn: 1,
    rate: (next: () => number) => (next() < 0.5 ? 0 : 4),
    maxWaitMs: 2_000,
  },
];

describe('the endpoint limits kept in memory (trial mode)', () => {
  it.each([1, 2, 3])('answers as the Redis scripts do, step for step (seed %i)', async (seed) => {
    const stores: LimitsStore[] = [
      redisLimitsStore(redis, prefix),
      localLimitsStore(createLocalLimitsState(), prefix),
    ];
    const next = random(seed);
    const endpoints = profiles.map((profile) => ({ ...profile, id: `ep_${seed}_${profile.name}` }));
    const ids = endpoints.map((endpoint) => endpoint.id);
    const held: { endpoint: (typeof endpoints)[number]; token: string; admittedAt: number }[] = [];
    let now = 1_000_000;
    let tokens = 0;
    const seen = new Set<string>();
    const [threshold, cooldownMs, leaseMs] = [2, 1000, 4000];

    for (let step = 0; step < 1500; step++) {
      // Sometimes not at all: several calls in one millisecond, an attempt that took 0 ms.
      now += next() < 0.25 ? 0 : Math.floor(next() * 150);
      const endpoint = endpoints[Math.floor(next() * endpoints.length)]!;
      let answers: unknown[];
      if (held.length === 0 || next() < 0.6) {
        const token = `t${++tokens}`;
        const jobId = next() < 0.5 ? `job${tokens}` : '';
        const { maxInFlight, breakerOn, maxWaitMs } = endpoint;
        // The busy waits' lower bound and first spacing as the worker's.
        const args = [now, token, leaseMs, maxInFlight, breakerOn, jobId, 86_400_000];
        args.push(endpoint.rate(next), maxWaitMs, 10, 50);
        answers = await Promise.all(stores.map((s) => s.admit(keysOf(endpoint.id), args)));
        const [verdict, waitMs] = answers[0] as [string, number];
        if (verdict === 'admitted') held.push({ endpoint, token, admittedAt: now });
        // A place further ahead than maxWaitMs is not handed out: a path of its own.
        if (waitMs === maxWaitMs) seen.add(`${verdict}, no place`);
      } else {
        // Some permits are never released (a worker that died); their leases run out.
        const permit = held.splice(Math.floor(next() * held.length), 1)[0]!;
        // 'kept': a place a worker kept after successes, given back.
        const verdict = ['succeeded', 'failed', 'none', 'kept'][Math.floor(next() * 4)]!;
        const args = [
          permit.token,
          verdict,
          now,
          permit.endpoint.breakerOn ? threshold : 0,
          cooldownMs,
          5000,
          86_400_000,
          permit.endpoint.maxInFlight,
          now - permit.admittedAt,
          MAX_PROMOTED_ON_CLOSE,
        ];
        const replies = await Promise.all(
          stores.map((s) => s.release(keysOf(permit.endpoint.id), args)),
        );
        // Redis hands the postponed deliveries back in no particular order.
        answers = replies.map(([transition, ...postponed]) => [transition, ...postponed.sort()]);
      }
      expect(answers[1], `step ${step}`).toEqual(answers[0]);
      seen.add((answers[0] as string[])[0]!);
      const states = await Promise.all(stores.map((s) => s.read(ids, now)));
      expect(states[1], `step ${step}`).toEqual(states[0]);
    }
    // The run went through every answer the scripts give, or it proved little.
    expect([...seen].sort()).toEqual(
      [
        'admitted',
        'busy',
        'busy, no place',
        'closed',
        'half-open',
        'none',
        'open',
        'opened',
        'rate',
        'rate, no place',
        'reopened',
      ].sort(),
    );
  });
});
