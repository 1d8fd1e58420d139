import type { ServerResponse } from 'node:http';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { attempts } from '../../src/db/schema.js';
import { deliveryJobId } from '../../src/jobs.js';
import { createLimitsRedis, redisNode } from '../../src/redis.js';
import { createEndpointLimits } from '../../src/delivery/endpointLimits.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';
import { TEST_REDIS_URL } from '../helpers/testRedis.js';

// Retries come quickly so the test sees deliveries refused by the open circuit; the schedule is
// long in all (its last step), so those refusals are free postponements, not attempts.
const ENV = {
  HOOKFLEET_RETRY_SCHEDULE: `${'100ms,'.repeat(8)}1m`,
  HOOKFLEET_CIRCUIT_FAILURES: '3',
  HOOKFLEET_CIRCUIT_COOLDOWN_MS: '50',
  HOOKFLEET_ENDPOINT_MAX_IN_FLIGHT: '2',
};

let fleet: TestFleet;
const limitsRedis = createLimitsRedis(redisNode(TEST_REDIS_URL), 'test:circuit-states');
const receivers: Receiver[] = [];

beforeAll(async () => {
  fleet = await createTestFleet(ENV);
  fleet.startWorker();
});
afterAll(async () => {
  await fleet.close();
  await Promise.all(receivers.map((r) => r.close()));
  await limitsRedis.quit();
});

async function receiver(respond?: Parameters<typeof startReceiver>[0]) {
  const started = await startReceiver(respond);
  receivers.push(started);
  return started;
}

function circuitOf(endpointId: string) {
  const limits = createEndpointLimits({
    redis: limitsRedis,
    prefix: fleet.config.queuePrefix,
    maxInFlight: 0,
    failureThreshold: 1,
    cooldownMs: 1,
    leaseMs: 1,
    logger: pino({ level: 'silent' }),
  });
  return limits.circuitStates([endpointId]).then((states) => states.get(endpointId)?.state);
}

async function sendTo(endpointId: string, count: number): Promise<string[]> {
  const jobIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const sent = await fleet.producer.send({
      eventType: 'limits.test',
      payload: { i },
      endpointIds: [endpointId],
    });
    jobIds.push(deliveryJobId(sent.id, endpointId));
  }
  return jobIds;
}

describe('a worker with per-endpoint limits', () => {
  it('stops sending to a failing endpoint, probes it one request at a time, and delivers everything once it recovers', async () => {
    let healthy = false;
    let inFlight = 0;
    let maxInFlight = 0;
    const sick = await receiver((_request, _index, res: ServerResponse) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on('close', () => inFlight--);
      res.writeHead(healthy ? 204 : 500).end();
    });
    const endpoint = await insertEndpoint(fleet.db.db, { url: sick.url });
    const jobIds = await sendTo(endpoint.id, 8);

    // Three failures in a row open the circuit; with two in flight at most (the cap), at most a
    // fourth request was already out by then. From the sixth on, only single probes get through,
    // and the deliveries that wait are not sent.
    await sick.waitForRequests(3);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    await sick.waitForRequests(6);
    maxInFlight = inFlight;
    await sick.waitForRequests(8);
    expect(maxInFlight).toBe(1);
    expect(await circuitOf(endpoint.id)).not.toBe('closed');

    healthy = true;
    const ends = await Promise.all(jobIds.map((id) => fleet.waitForDelivery(id)));
    expect(ends.every((end) => end.state === 'completed')).toBe(true);
    expect(await circuitOf(endpoint.id)).toBe('closed');

    // Postponements are not attempts: a delivery's history holds only what reached the receiver.
    await fleet.flushRecorders();
    const rows = await fleet.db.db
      .select()
      .from(attempts)
      .where(eq(attempts.endpointId, endpoint.id));
    expect(rows.length).toBe(sick.requests.length);
    expect(rows.every((row) => row.error === null || /500/.test(row.error))).toBe(true);
  });

  it('keeps an endpoint that starts hanging to its in-flight cap while another endpoint is served', async () => {
    let hang = false;
    let inFlight = 0;
    let maxInFlight = 0;
    const flaky = await receiver((_request, _index, res: ServerResponse) => {
      if (!hang) return void res.writeHead(204).end();
      // Never answers; the delivery timeout (2 s in tests) ends each attempt.
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on('close', () => inFlight--);
    });
    const healthy = await receiver();
    const slow = await insertEndpoint(fleet.db.db, { url: flaky.url });
    const fine = await insertEndpoint(fleet.db.db, { url: healthy.url });
    // Successes raise the endpoint's limit to the cap (2).
    const warmUp = await sendTo(slow.id, 4);
    await Promise.all(warmUp.map((id) => fleet.waitForDelivery(id)));

    hang = true;
    await sendTo(slow.id, 10);
    await flaky.waitForRequests(4 + 2);
    const fineJobs = await sendTo(fine.id, 20);
    const ends = await Promise.all(fineJobs.map((id) => fleet.waitForDelivery(id)));
    expect(ends.every((end) => end.state === 'completed')).toBe(true);
    // The worker has 50 slots, but never more than the cap's two went to the hanging endpoint.
    expect(maxInFlight).toBe(2);
  });
});
