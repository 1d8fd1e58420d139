import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLimitsRedis, redisNode } from '../../src/redis.js';
import {
  createEndpointLimits,
  endpointLimitsKey,
  PLACE_LINGER_MS,
  redisLimitsStore,
  MAX_BUSY_WAIT_MS,
  MAX_COOLDOWN_MS,
  type Admission,
  type EndpointLimits,
  type EndpointLimitsOptions,
  type Permit,
} from '../../src/delivery/endpointLimits.js';
import { freePort } from '../helpers/freePort.js';
import {
  deleteQueueKeys,
  recordCommandsSent,
  TEST_REDIS_URL,
  testQueuePrefix,
} from '../helpers/testRedis.js';

const prefix = testQueuePrefix();
const redis = createLimitsRedis(redisNode(TEST_REDIS_URL), 'test:endpoint-limits');
const logger = pino({ level: 'silent' });
let nowMs = Date.parse('2026-01-01T00:00:00Z');
let endpointCount = 0;

/** Limits over the real Redis with a clock the test moves, for a fresh endpoint id. */
function limitsFor(options: Partial<EndpointLimitsOptions> = {}) {
  const limits = createEndpointLimits({
    redis,
    prefix,
    maxInFlight: 0,
    failureThreshold: 0,
    cooldownMs: 10_000,
    leaseMs: 20_000,
    logger,
    now: () => nowMs,
    ...options,
  });
  return { limits, endpointId: `ep_${++endpointCount}` };
}

function permitOf(admission: Admission): Permit {
  if (!admission.admitted) throw new Error(`refused: ${admission.reason}`);
  return admission.permit;
}

async function fail(limits: EndpointLimits, endpointId: string, times: number) {
  for (let i = 0; i < times; i++)
    await limits.release(permitOf(await limits.admit(endpointId)), 'failed');
}

async function stateOf(limits: EndpointLimits, endpointId: string) {
  return (await limits.circuitStates([endpointId])).get(endpointId)?.state;
}

beforeAll(() => redis.ping());
afterAll(async () => {
  await deleteQueueKeys(prefix);
  await redis.quit();
});

describe('the per-endpoint in-flight cap', () => {
  /** Admits until refused; returns the permits it got. */
  async function fill(limits: EndpointLimits, endpointId: string): Promise<Permit[]> {
    const permits: Permit[] = [];
    for (;;) {
      const admission = await limits.admit(endpointId);
      if (!admission.admitted) {
        expect(admission.reason).toBe('endpoint_busy');
        expect(admission.retryInMs).toBeGreaterThan(0);
        return permits;
      }
      permits.push(admission.permit);
    }
  }

  it('starts an endpoint at one delivery in flight and doubles it per success, up to the cap', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 6 });
    const sizes: number[] = [];
    for (let round = 0; round < 5; round++) {
      const permits = await fill(limits, endpointId);
      sizes.push(permits.length);
      await limits.release(permits[0]!, 'succeeded');
      for (const permit of permits.slice(1)) await limits.release(permit, 'none');
    }
    expect(sizes).toEqual([1, 2, 4, 6, 6]);
  });

  it('halves the limit on each failure', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 8 });
    for (let i = 0; i < 3; i++)
      await limits.release(permitOf(await limits.admit(endpointId)), 'succeeded');
    const permits = await fill(limits, endpointId);
    expect(permits).toHaveLength(8);
    await limits.release(permits[0]!, 'failed');
    for (const permit of permits.slice(1)) await limits.release(permit, 'none');
    expect(await fill(limits, endpointId)).toHaveLength(4);
  });

  it("asks a busy endpoint's refused delivery to come back after about its last attempt's duration", async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 1 });
    const first = permitOf(await limits.admit(endpointId));
    const unknown = await limits.admit(endpointId);
    // Nothing known yet about the endpoint: a fixed wait.
    expect(unknown.admitted || unknown.retryInMs).toBeGreaterThanOrEqual(50);
    nowMs += 1000; // the queue of postponed deliveries has drained
    await limits.release(first, 'succeeded');
    const second = permitOf(await limits.admit(endpointId));
    nowMs += 40; // the attempt took 40 ms
    await limits.release(second, 'succeeded');
    permitOf(await limits.admit(endpointId));
    const busy = await limits.admit(endpointId);
    expect(busy).toMatchObject({ admitted: false, reason: 'endpoint_busy' });
    if (!busy.admitted) {
      expect(busy.retryInMs).toBeGreaterThanOrEqual(40);
      expect(busy.retryInMs).toBeLessThanOrEqual(60);
    }
  });

  it('gives the deliveries a busy endpoint refuses places one drain interval apart, so a backlog comes back once each', async () => {
    // A slow endpoint: 2 in flight, attempts of 1 s, so one place frees every 500 ms.
    const { limits, endpointId } = limitsFor({ maxInFlight: 2 });
    const warm = [permitOf(await limits.admit(endpointId))];
    nowMs += 1000;
    await limits.release(warm[0]!, 'succeeded');
    permitOf(await limits.admit(endpointId));
    permitOf(await limits.admit(endpointId));
    const waits: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const refused = await limits.admit(endpointId);
      if (refused.admitted) throw new Error('admitted past the cap');
      expect(refused.reason).toBe('endpoint_busy');
      waits.push(refused.retryInMs);
    }
    // The k-th refused comes back after about k drain intervals (plus up to half of one).
    for (const [k, waitMs] of waits.entries()) {
      expect(waitMs).toBeGreaterThanOrEqual((k + 1) * 500);
      expect(waitMs).toBeLessThanOrEqual((k + 1) * 500 + 250);
    }
  });

  it("spaces places by successful attempts only: a hanging endpoint's timeouts do not push its deliveries minutes ahead", async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 1 });
    const fast = permitOf(await limits.admit(endpointId));
    nowMs += 20;
    await limits.release(fast, 'succeeded');
    const hung = permitOf(await limits.admit(endpointId));
    nowMs += 15_000; // the delivery timeout
    await limits.release(hung, 'failed');
    nowMs += 1000;
    permitOf(await limits.admit(endpointId));
    const refused = await limits.admit(endpointId);
    expect(refused.admitted).toBe(false);
    if (!refused.admitted) expect(refused.retryInMs).toBeLessThan(100);
  });

  it('hands out no place further ahead than MAX_BUSY_WAIT_MS', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 1 });
    const first = permitOf(await limits.admit(endpointId));
    nowMs += 60_000; // a one-minute attempt
    await limits.release(first, 'succeeded');
    permitOf(await limits.admit(endpointId));
    const waits: number[] = [];
    for (let i = 0; i < 15; i++) {
      const refused = await limits.admit(endpointId);
      if (!refused.admitted) waits.push(refused.retryInMs);
    }
    expect(waits.slice(0, 10).every((ms, k) => ms >= (k + 1) * 60_000)).toBe(true);
    for (const ms of waits.slice(10)) {
      expect(ms).toBeGreaterThanOrEqual(MAX_BUSY_WAIT_MS);
      expect(ms).toBeLessThanOrEqual(MAX_BUSY_WAIT_MS * 1.5);
    }
  });

  it('a delivery in flight holds its place until it is released', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 2 });
    const first = permitOf(await limits.admit(endpointId));
    expect((await limits.admit(endpointId)).admitted).toBe(false);
    await limits.release(first, 'none');
    expect((await limits.admit(endpointId)).admitted).toBe(true);
  });

  it('counts every worker of the fleet: two limit instances share one cap', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 1 });
    const other = limitsFor({ maxInFlight: 1 }).limits;
    permitOf(await limits.admit(endpointId));
    expect((await other.admit(endpointId)).admitted).toBe(false);
  });

  it('gives back the place of a delivery whose worker died once its lease runs out', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 1, leaseMs: 20_000 });
    permitOf(await limits.admit(endpointId)); // never released, as after a SIGKILL
    expect((await limits.admit(endpointId)).admitted).toBe(false);
    nowMs += 20_001;
    expect((await limits.admit(endpointId)).admitted).toBe(true);
  });

  it('keeps endpoints apart', async () => {
    const a = limitsFor({ maxInFlight: 1 });
    const b = limitsFor({ maxInFlight: 1 });
    permitOf(await a.limits.admit(a.endpointId));
    expect((await b.limits.admit(b.endpointId)).admitted).toBe(true);
  });
});

describe('the per-endpoint circuit breaker', () => {
  it('opens after the threshold of failures in a row and postpones until the cooldown ends', async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 3, cooldownMs: 10_000 });
    await fail(limits, endpointId, 2);
    expect(await stateOf(limits, endpointId)).toBe('closed');
    await fail(limits, endpointId, 1);
    expect(await stateOf(limits, endpointId)).toBe('open');

    const refused = await limits.admit(endpointId);
    expect(refused).toMatchObject({ admitted: false, reason: 'circuit_open' });
    // Spread over the cooldown and up to half as much again, never earlier than it ends.
    if (!refused.admitted) {
      expect(refused.retryInMs).toBeGreaterThanOrEqual(10_000);
      expect(refused.retryInMs).toBeLessThanOrEqual(15_000);
    }
    expect((await limits.circuitStates([endpointId])).get(endpointId)?.retryAt?.getTime()).toBe(
      nowMs + 10_000,
    );
  });

  it('a success resets the count: failures must come in a row', async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 3 });
    await fail(limits, endpointId, 2);
    await limits.release(permitOf(await limits.admit(endpointId)), 'succeeded');
    await fail(limits, endpointId, 2);
    expect(await stateOf(limits, endpointId)).toBe('closed');
  });

  it('sends one probe after the cooldown; its success closes the circuit', async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 2, cooldownMs: 10_000 });
    await fail(limits, endpointId, 2);
    nowMs += 10_000;
    expect(await stateOf(limits, endpointId)).toBe('half-open');

    const probe = permitOf(await limits.admit(endpointId));
    // While the probe is out, every other delivery waits.
    expect(await limits.admit(endpointId)).toMatchObject({
      admitted: false,
      reason: 'circuit_open',
    });
    await limits.release(probe, 'succeeded');
    expect(await stateOf(limits, endpointId)).toBe('closed');
    expect((await limits.admit(endpointId)).admitted).toBe(true);
  });

  it('a failed probe opens it again for twice as long, up to the longest cooldown', async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 1, cooldownMs: 100_000 });
    await fail(limits, endpointId, 1);
    const cooldowns: number[] = [];
    for (let i = 0; i < 4; i++) {
      const retryAt = (await limits.circuitStates([endpointId])).get(endpointId)?.retryAt;
      cooldowns.push(retryAt!.getTime() - nowMs);
      nowMs = retryAt!.getTime();
      await limits.release(permitOf(await limits.admit(endpointId)), 'failed');
    }
    expect(cooldowns).toEqual([100_000, 200_000, MAX_COOLDOWN_MS, MAX_COOLDOWN_MS]);
  });

  it('replaces a probe whose worker died once its lease runs out', async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 1, leaseMs: 20_000 });
    await fail(limits, endpointId, 1);
    nowMs += 10_000;
    permitOf(await limits.admit(endpointId)); // the probe, never released
    expect((await limits.admit(endpointId)).admitted).toBe(false);
    nowMs += 20_000;
    const second = permitOf(await limits.admit(endpointId));
    await limits.release(second, 'succeeded');
    expect(await stateOf(limits, endpointId)).toBe('closed');
  });

  it('a late failure of a delivery sent before the circuit opened is not taken for the probe', async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 1, cooldownMs: 10_000 });
    const early = permitOf(await limits.admit(endpointId));
    await fail(limits, endpointId, 1);
    nowMs += 10_000;
    const probe = permitOf(await limits.admit(endpointId));
    await limits.release(early, 'failed');
    expect(await stateOf(limits, endpointId)).toBe('half-open');
    await limits.release(probe, 'succeeded');
    expect(await stateOf(limits, endpointId)).toBe('closed');
  });

  it('hands back the deliveries an open circuit postponed when it closes', async () => {
    const closed: [string, string[]][] = [];
    const { limits, endpointId } = limitsFor({
      failureThreshold: 1,
      cooldownMs: 10_000,
      onCircuitClosed: (id, jobIds) => closed.push([id, jobIds]),
    });
    await fail(limits, endpointId, 1);
    for (const jobId of ['job-a', 'job-b', 'job-a'])
      expect((await limits.admit(endpointId, jobId)).admitted).toBe(false);
    nowMs += 10_000;
    const probe = permitOf(await limits.admit(endpointId, 'job-c'));
    await limits.release(probe, 'succeeded');
    expect(closed).toHaveLength(1);
    expect(closed[0]![0]).toBe(endpointId);
    expect(closed[0]![1].sort()).toEqual(['job-a', 'job-b']);
    // Handed back once: a later close has nothing left to hand back.
    await fail(limits, endpointId, 1);
    nowMs += 10_000;
    await limits.release(permitOf(await limits.admit(endpointId)), 'succeeded');
    expect(closed[1]?.[1]).toEqual([]);
  });

  it("a verdict of 'none' (nothing reached the receiver) changes nothing", async () => {
    const { limits, endpointId } = limitsFor({ failureThreshold: 1, maxInFlight: 1 });
    await limits.release(permitOf(await limits.admit(endpointId)), 'none');
    expect(await stateOf(limits, endpointId)).toBe('closed');
    expect((await limits.admit(endpointId)).admitted).toBe(true);
  });
});

describe('when the limits cannot work', () => {
  it('with both limits off, admits without asking Redis', async () => {
    const { limits, endpointId } = limitsFor();
    const admission = await limits.admit(endpointId);
    expect(admission).toEqual({ admitted: true, permit: { endpointId, token: undefined } });
  });

  it('admits deliveries without limits while Redis does not answer', async () => {
    const deadRedis = createLimitsRedis(
      redisNode(`redis://127.0.0.1:${await freePort()}`),
      'test:dead',
    );
    deadRedis.on('error', () => {});
    try {
      const limits = createEndpointLimits({
        redis: deadRedis,
        prefix,
        maxInFlight: 1,
        failureThreshold: 1,
        cooldownMs: 1000,
        leaseMs: 1000,
        logger,
      });
      const admission = await limits.admit('ep_dead');
      expect(admission).toMatchObject({ admitted: true, permit: { token: undefined } });
      await limits.release(permitOf(admission), 'failed'); // nothing to release, no throw
    } finally {
      deadRedis.disconnect();
    }
  });
});

describe("an endpoint's requests-per-second limit", () => {
  it('spaces admissions one interval apart, fleet-wide, even with the other limits off', async () => {
    const { limits, endpointId } = limitsFor();
    const other = limitsFor().limits; // another worker
    const admittedAt: number[] = [];
    const start = nowMs;
    // 10 per second, asked every 10 ms for 2 s by two workers.
    while (nowMs < start + 2000) {
      for (const l of [limits, other]) {
        const admission = await l.admit(endpointId, undefined, 10);
        if (admission.admitted) admittedAt.push(nowMs);
        else expect(admission).toMatchObject({ reason: 'rate_limited' });
      }
      nowMs += 10;
    }
    expect(admittedAt.length).toBeGreaterThanOrEqual(20);
    expect(admittedAt.length).toBeLessThanOrEqual(21);
    // No one second holds more than rate + 1.
    for (const t of admittedAt) {
      expect(admittedAt.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(11);
    }
  });

  it('asks a refused delivery back at its own place in the endpoint queue, one interval apart', async () => {
    const { limits, endpointId } = limitsFor();
    permitOf(await limits.admit(endpointId, undefined, 4));
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const refused = await limits.admit(endpointId, undefined, 4);
      if (refused.admitted) throw new Error('admitted over the rate');
      waits.push(refused.retryInMs);
    }
    for (const [k, waitMs] of waits.entries()) {
      expect(waitMs).toBeGreaterThanOrEqual((k + 1) * 250);
      expect(waitMs).toBeLessThanOrEqual((k + 1) * 250 + 125);
    }
    // At its place, each is admitted.
    nowMs += waits[0]!;
    expect((await limits.admit(endpointId, undefined, 4)).admitted).toBe(true);
  });
});

describe('places kept for the next delivery', () => {
  const REUSE_MS = 2500;

  /** Limits keeping places, over a store that counts what it is asked. */
  function keepingLimits(options: Partial<EndpointLimitsOptions> = {}) {
    const store = redisLimitsStore(redis, prefix);
    const asked = { admit: 0, release: [] as string[] };
    const counting = {
      ...store,
      admit: (...args: Parameters<typeof store.admit>) => {
        asked.admit += 1;
        return store.admit(...args);
      },
      release: (...args: Parameters<typeof store.release>) => {
        asked.release.push(String(args[1][1]));
        return store.release(...args);
      },
    };
    const made = limitsFor({ store: counting, placeReuseMs: REUSE_MS, ...options });
    return { ...made, asked };
  }
  const placesInFlight = (endpointId: string) =>
    redis.zcard(endpointLimitsKey(prefix, endpointId, 'in-flight'));

  it("carries a healthy endpoint's next delivery on the place of its last success, without asking Redis, and still counts it fleet-wide", async () => {
    const { limits, endpointId, asked } = keepingLimits({ maxInFlight: 1 });
    const first = permitOf(await limits.admit(endpointId));
    await limits.release(first, 'succeeded');
    expect(asked.release).toEqual([]);
    // Kept, not given back: another worker finds the endpoint at its cap.
    expect(await placesInFlight(endpointId)).toBe(1);
    const other = limitsFor({ maxInFlight: 1 }).limits;
    expect(await other.admit(endpointId)).toMatchObject({ reason: 'endpoint_busy' });

    const second = permitOf(await limits.admit(endpointId));
    expect(second.token).toBe(first.token);
    expect(asked.admit).toBe(1);
    await limits.release(second, 'succeeded');
    // Shutdown gives it back, with its verdict already counted.
    await limits.close();
    expect(asked.release).toEqual(['kept']);
    expect(await placesInFlight(endpointId)).toBe(0);
    expect((await other.admit(endpointId)).admitted).toBe(true);
  });

  it('keeps no place while the limit is still growing, nor for an endpoint with a rate limit', async () => {
    const growing = keepingLimits({ maxInFlight: 4 });
    // Starts at one in flight: each success must reach Redis to double it.
    await growing.limits.release(
      permitOf(await growing.limits.admit(growing.endpointId)),
      'succeeded',
    );
    await growing.limits.release(
      permitOf(await growing.limits.admit(growing.endpointId)),
      'succeeded',
    );
    expect(growing.asked.release).toEqual(['succeeded', 'succeeded']);

    const rated = keepingLimits({ maxInFlight: 1 });
    const permit = permitOf(await rated.limits.admit(rated.endpointId, undefined, 10));
    await rated.limits.release(permit, 'succeeded');
    expect(rated.asked.release).toEqual(['succeeded']);
  });

  it("gives back an endpoint's kept places when a delivery to it fails, and the failure counts", async () => {
    const { limits, endpointId, asked } = keepingLimits({ maxInFlight: 2, failureThreshold: 5 });
    // Slow start: one success takes the limit to its top of 2.
    await limits.release(permitOf(await limits.admit(endpointId)), 'succeeded');
    const [a, b] = [
      permitOf(await limits.admit(endpointId)),
      permitOf(await limits.admit(endpointId)),
    ];
    await limits.release(a, 'succeeded');
    expect(await placesInFlight(endpointId)).toBe(2);
    await limits.release(b, 'failed');
    await vi.waitFor(async () => expect(await placesInFlight(endpointId)).toBe(0));
    expect(asked.release.sort()).toEqual(['failed', 'kept', 'succeeded']);
    const state = await redis.hmget(
      endpointLimitsKey(prefix, endpointId, 'limits'),
      'failures',
      'limit',
    );
    expect(state).toEqual(['1', '1']);
    // The next delivery asks Redis again.
    const admitsBefore = asked.admit;
    permitOf(await limits.admit(endpointId));
    expect(asked.admit).toBe(admitsBefore + 1);
  });

  it('asks Redis again once a kept place could no longer cover a whole attempt, and gives the old one back', async () => {
    const { limits, endpointId, asked } = keepingLimits({ maxInFlight: 2 });
    await limits.release(permitOf(await limits.admit(endpointId)), 'succeeded');
    const kept = permitOf(await limits.admit(endpointId));
    await limits.release(kept, 'succeeded');
    nowMs += REUSE_MS;
    const fresh = permitOf(await limits.admit(endpointId));
    expect(fresh.token).not.toBe(kept.token);
    expect(asked.admit).toBe(3);
    await vi.waitFor(() => expect(asked.release).toContain('kept'));
    expect(await placesInFlight(endpointId)).toBe(1);
  });

  it('gives back a place no delivery took for PLACE_LINGER_MS', async () => {
    const { limits, endpointId, asked } = keepingLimits({ maxInFlight: 1 });
    await limits.release(permitOf(await limits.admit(endpointId)), 'succeeded');
    expect(await placesInFlight(endpointId)).toBe(1);
    nowMs += PLACE_LINGER_MS;
    // Its timer runs on the real clock, within PLACE_LINGER_MS.
    await vi.waitFor(async () => expect(await placesInFlight(endpointId)).toBe(0));
    expect(asked.release).toEqual(['kept']);
  });
});

describe('admissions and releases asked for in one turn of the event loop', () => {
  it('go to Redis as one script call each, in order, with every delivery answered as if alone', async () => {
    // A connection of its own, whose commands the test counts as they are sent.
    const connection = createLimitsRedis(
      redisNode(TEST_REDIS_URL),
      'test:endpoint-limits-turn',
    ) as Redis;
    const sent = recordCommandsSent(connection);
    try {
      const { limits, endpointId } = limitsFor({ redis: connection, maxInFlight: 4 });
      const other = `ep_${++endpointCount}`;
      // Redis learns each script on its first use (NOSCRIPT, then the script is sent again).
      const warmUp = `ep_${++endpointCount}`;
      await limits.release(permitOf(await limits.admit(warmUp)), 'none');
      sent.length = 0;
      // One endpoint starts at one delivery in flight: of three asked together, the first is
      // admitted and the next two see it, as three calls one after the other would.
      const answers = await Promise.all([
        limits.admit(endpointId),
        limits.admit(endpointId),
        limits.admit(other),
        limits.admit(endpointId),
      ]);
      expect(answers.map((a) => a.admitted)).toEqual([true, false, true, false]);
      await Promise.all([
        limits.release(permitOf(answers[0]), 'succeeded'),
        limits.release(permitOf(answers[2]), 'failed'),
      ]);
      // One call for the four admissions, one for the two releases.
      expect(sent).toEqual(['evalsha', 'evalsha']);
      // Each release was applied: the first endpoint's limit doubled, so two now fit.
      const again = await Promise.all([limits.admit(endpointId), limits.admit(endpointId)]);
      expect(again.map((a) => a.admitted)).toEqual([true, true]);
    } finally {
      await connection.quit();
    }
  });

  it('answers each delivery alone when another one of the same call fails in Redis', async () => {
    const { limits, endpointId } = limitsFor({ maxInFlight: 4 });
    const broken = `ep_${++endpointCount}`;
    // A key of the wrong type makes that endpoint's part of the script fail.
    await redis.set(`${prefix}:endpoint:{${broken}}:limits`, 'not a hash');
    const [good, bad] = await Promise.all([limits.admit(endpointId), limits.admit(broken)]);
    expect(good.admitted && good.permit.token).toBeTruthy();
    // Redis failing for one endpoint admits that delivery without limits, as when Redis is down.
    expect(bad.admitted && bad.permit.token).toBeUndefined();
    expect(bad.admitted).toBe(true);
  });
});
