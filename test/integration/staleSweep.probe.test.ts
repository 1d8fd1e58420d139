/**
 * Issue #20 item 4: the stale sweep probes an idle endpoint (no failed attempt since its stale
 * clock started) with a signed hookfleet.ping before deactivating it, on real Redis, PostgreSQL
 * and HTTP receivers; an endpoint whose deliveries failed is deactivated at once, as before.
 */
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { createLogger } from '../../src/logger.js';
import type { RunningWorker } from '../../src/worker/startWorker.js';
import { createStaleProbes, PING_EVENT_TYPE } from '../../src/worker/staleProbes.js';
import { sweepStaleEndpoints, type SweepOptions } from '../../src/worker/staleSweep.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let worker: RunningWorker;
const receivers: Receiver[] = [];

beforeAll(async () => {
  fleet = await createTestFleet({ HOOKFLEET_ENDPOINT_CACHE_MS: '1' });
  worker = fleet.startWorker();
  await worker.worker.waitUntilReady();
});
afterAll(async () => {
  await fleet.close();
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(status: number): Promise<Receiver> {
  const started = await startReceiver((_request, _index, res) => {
    res.writeHead(status).end();
  });
  receivers.push(started);
  return started;
}

/** The sweep as the maintenance queue runs it: probes sent on the fleet's `messages` queue. */
function sweep(options: SweepOptions = {}) {
  const logger = createLogger(fleet.config);
  const probes = createStaleProbes({
    sql: fleet.db.sql,
    queue: fleet.producer.messages,
    logger,
  });
  return sweepStaleEndpoints({ config: fleet.config, logger, dbClient: fleet.db, probes }, options);
}

/** An endpoint of `ownerId` created 400 days ago that never succeeded: stale (365 days). */
async function staleEndpoint(url: string, ownerId: string) {
  const endpoint = await insertEndpoint(fleet.db.db, { url, ownerId, eventTypes: ['order.*'] });
  await fleet.db.sql`update endpoints set created_at = now() - interval '400 days'
    where id = ${endpoint.id}`;
  return endpoint;
}

async function until<T>(read: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    await fleet.flushRecorders();
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the stale sweep probes an idle endpoint first', () => {
  it('sends it a signed hookfleet.ping for its owner; after a 2xx it stays active', async () => {
    const ok = await receiver(204);
    const endpoint = await staleEndpoint(ok.url, 'org_idle');

    const dry = await sweep({ dryRun: true });
    expect(dry).toMatchObject({ probed: 1, deactivated: 0 });

    const first = await sweep();
    expect(first).toMatchObject({ probed: 1, deactivated: 0 });
    expect((await findEndpoint(fleet.db.db, endpoint.id))!.active).toBe(true);

    const [request] = await ok.waitForRequests(1);
    const verified = new Webhook(endpoint.secret).verify(request!.body, {
      'webhook-id': String(request!.headers['webhook-id']),
      'webhook-timestamp': String(request!.headers['webhook-timestamp']),
      'webhook-signature': String(request!.headers['webhook-signature']),
    });
    expect(verified).toMatchObject({
      type: PING_EVENT_TYPE,
      data: { endpointId: endpoint.id, reason: 'stale' },
    });
    // The ping went through the pipeline as a message of the endpoint's owner, to it alone.
    const [message] = await fleet.db.sql<{ owner_id: string; endpoint_ids: string[] }[]>`
      select owner_id, endpoint_ids from messages where id = ${String(request!.headers['webhook-id'])}`;
    expect(message).toEqual({ owner_id: 'org_idle', endpoint_ids: [endpoint.id] });

    // The 2xx restarted the stale clock: later sweeps, even past the grace period, leave it be.
    await until(
      async () => (await findEndpoint(fleet.db.db, endpoint.id))!.lastSuccessAt ?? undefined,
      'the ping to succeed',
    );
    const later = new Date(Date.now() + (fleet.config.staleProbeGraceHours + 1) * 3_600_000);
    expect(await sweep({ now: later })).toMatchObject({ probed: 0, deactivated: 0 });
    expect((await findEndpoint(fleet.db.db, endpoint.id))!.active).toBe(true);
    expect(ok.requests).toHaveLength(1);
  });

  it('deactivates it on the following sweep when the receiver answers 500', async () => {
    const failing = await receiver(500);
    const endpoint = await staleEndpoint(failing.url, 'org_broken');

    expect(await sweep()).toMatchObject({ probed: 1, deactivated: 0 });
    await failing.waitForRequests(1);
    await until(
      async () => (await findEndpoint(fleet.db.db, endpoint.id))!.lastFailureAt ?? undefined,
      'the ping to fail',
    );

    expect(await sweep()).toMatchObject({ probed: 0, deactivated: 1 });
    const after = (await findEndpoint(fleet.db.db, endpoint.id))!;
    expect(after).toMatchObject({ active: false, deactivationReason: 'stale' });
  });

  it('deactivates it once a probe has gone unanswered for the grace period', async () => {
    const ok = await receiver(204);
    const endpoint = await staleEndpoint(ok.url, 'org_silent');
    // As if a ping were sent a day ago and never recorded (e.g. no worker ran since).
    await fleet.db.sql`update endpoints set stale_probed_at = now() - interval '1 day'
      where id = ${endpoint.id}`;

    expect(await sweep()).toMatchObject({ probed: 0, deactivated: 1 });
    expect((await findEndpoint(fleet.db.db, endpoint.id))!.active).toBe(false);
    expect(ok.requests).toHaveLength(0);
  });
});

describe('an endpoint whose deliveries failed in its stale window', () => {
  it('is deactivated at once, without a probe', async () => {
    const ok = await receiver(204);
    const endpoint = await staleEndpoint(ok.url, 'org_failed');
    await fleet.db.sql`update endpoints set last_failure_at = now() - interval '10 days'
      where id = ${endpoint.id}`;

    expect(await sweep({ dryRun: true })).toMatchObject({ probed: 0, deactivated: 1 });
    expect(await sweep()).toMatchObject({ probed: 0, deactivated: 1 });
    expect((await findEndpoint(fleet.db.db, endpoint.id))!).toMatchObject({
      active: false,
      deactivationReason: 'stale',
    });
    expect(ok.requests).toHaveLength(0);
  });
});
