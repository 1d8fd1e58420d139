import { eq } from 'drizzle-orm';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setEndpointActive } from '../../src/db/endpoints.js';
import { attempts, endpoints } from '../../src/db/schema.js';
import {
  createdEndpointSchema,
  endpointHealthSchema,
  endpointListSchema,
  endpointSchema,
  errorSchema,
  rotatedSecretSchema,
  sendMessageResponse,
} from '../../src/api/contracts.js';
import { TEST_EVENT_TYPE } from '../../src/producer/producer.js';
import { messageJobId } from '../../src/jobs.js';
import { findMessage } from '../../src/db/messages.js';
import type { ResolvedAddress } from '../../src/delivery/addressGuard.js';
import { createEndpointLimits } from '../../src/delivery/endpointLimits.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

// No worker runs in this file: jobs stay in the queue where the tests can look at them.
const DNS: Record<string, ResolvedAddress[]> = {
  'receiver.test': [{ address: '127.0.0.1', family: 4 }],
  'internal.test': [{ address: '10.0.0.5', family: 4 }],
  'nowhere.test': [],
};

let api: ApiHarness;
let receiver: Receiver | undefined;
beforeAll(async () => {
  api = await createApiHarness({}, { resolve: (name) => Promise.resolve(DNS[name] ?? []) });
});
afterAll(async () => {
  await api.close();
});
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

const url = 'http://127.0.0.1:9/hook';

async function register(body: Record<string, unknown> = {}) {
  const res = await api.call('POST', '/v1/endpoints', { body: { url, ...body } });
  expect(res.status, res.text).toBe(201);
  return createdEndpointSchema.parse(res.body);
}

async function row(id: string) {
  const [found] = await api.fleet.db.db.select().from(endpoints).where(eq(endpoints.id, id));
  return found!;
}

describe('POST /v1/endpoints', () => {
  it('registers an endpoint and answers 201 with its id, a Location and a whsec_ signing secret', async () => {
    const res = await api.call('POST', '/v1/endpoints', {
      body: { url, eventTypes: ['invoice.*'], description: 'billing', staleAfterDays: 30 },
    });
    expect(res.status).toBe(201);
    const created = createdEndpointSchema.parse(res.body);
    expect(created).toMatchObject({
      url,
      eventTypes: ['invoice.*'],
      description: 'billing',
      staleAfterDays: 30,
      active: true,
    });
    expect(created.id).toMatch(/^ep_/);
    expect(created.secret).toMatch(/^whsec_/);
    expect(res.headers.get('location')).toBe(`/v1/endpoints/${created.id}`);
    expect((await row(created.id)).secret).toBe(created.secret);
  });

  it('accepts a host name whose addresses the guard allows', async () => {
    const created = await register({ url: 'http://receiver.test:9/hook' });
    expect(created.url).toBe('http://receiver.test:9/hook');
  });

  it.each([
    ['a private address', 'http://10.0.0.1/hook', 'private'],
    ['a cloud metadata address', 'http://169.254.169.254/latest/meta-data', 'metadata'],
    ['a loopback name', 'http://localhost:9/hook', 'loopback'],
    ['a name resolving to a private address', 'http://internal.test/hook', '10.0.0.5'],
    ['a name that does not resolve', 'http://nowhere.test/hook', 'nowhere.test'],
    ['credentials in the URL', 'http://user:pw@127.0.0.1:9/hook', 'credentials'],
    ['another scheme', 'ftp://127.0.0.1/hook', 'http'],
  ])('refuses %s with 422 and the reason', async (_what, badUrl, reason) => {
    const res = await api.call('POST', '/v1/endpoints', { body: { url: badUrl } });
    expect(res.status).toBe(422);
    const error = errorSchema.parse(res.body);
    expect(error.code).toBe('validation_failed');
    expect(error.fields?.[0]?.path).toBe('url');
    expect(error.detail.toLowerCase()).toContain(reason);
  });

  it('with verify: true, sends a signed verification request first and registers on a 2xx', async () => {
    receiver = await startReceiver();
    const res = await api.call('POST', '/v1/endpoints', {
      body: { url: receiver.url, verify: true },
    });
    expect(res.status).toBe(201);
    const created = createdEndpointSchema.parse(res.body);
    const [request] = receiver.requests;
    const headers = {
      'webhook-id': String(request!.headers['webhook-id']),
      'webhook-timestamp': String(request!.headers['webhook-timestamp']),
      'webhook-signature': String(request!.headers['webhook-signature']),
    };
    // In the envelope, as the endpoint's deliveries will be.
    expect(new Webhook(created.secret).verify(request!.body, headers)).toMatchObject({
      type: 'hookfleet.endpoint.verification',
      data: { type: 'hookfleet.endpoint.verification', endpointId: created.id },
    });
  });

  it('with verify: true, refuses with 422 and the receiver status unless it answers 2xx, and stores nothing', async () => {
    receiver = await startReceiver((_req, _i, res) => {
      res.writeHead(500).end('nope');
    });
    const before = await api.fleet.db.db.$count(endpoints);
    const res = await api.call('POST', '/v1/endpoints', {
      body: { url: receiver.url, verify: true },
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'verification_failed' });
    expect(String(res.body.detail)).toContain('HTTP 500');
    expect(await api.fleet.db.db.$count(endpoints)).toBe(before);
  });
});

describe('reading endpoints', () => {
  it('never shows a secret outside create and rotate-secret', async () => {
    const created = await register();
    await api.call('POST', `/v1/endpoints/${created.id}/rotate-secret`);
    const views = [
      await api.call('GET', `/v1/endpoints/${created.id}`),
      await api.call('GET', '/v1/endpoints?limit=100'),
      await api.call('PATCH', `/v1/endpoints/${created.id}`, { body: { description: 'x' } }),
    ];
    for (const view of views) {
      expect(view.status).toBe(200);
      expect(view.text).not.toMatch(/whsec_|"secret"|previousSecret/);
    }
  });

  it('lists endpoints a page at a time, following nextCursor to the end', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await register()).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const res = await api.call(
        'GET',
        `/v1/endpoints?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.status).toBe(200);
      const list = endpointListSchema.parse(res.body);
      expect(list.data.length).toBeLessThanOrEqual(2);
      seen.push(...list.data.map((e) => e.id));
      cursor = list.nextCursor;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
    for (const id of ids) expect(seen).toContain(id);
  });

  it('shows health: counters, and success rate and latency over the last 24 hours only', async () => {
    const created = await register();
    const now = Date.now();
    const attempt = (
      outcome: string,
      durationMs: number,
      agoMs: number,
      statusCode: number | null = 200,
    ) => ({
      messageId: 'msg_health',
      endpointId: created.id,
      attemptNumber: 1,
      attemptedAt: new Date(now - agoMs),
      outcome,
      statusCode,
      durationMs,
    });
    await api.fleet.db.db.insert(attempts).values([
      attempt('succeeded', 10, 1000),
      attempt('succeeded', 20, 2000),
      attempt('succeeded', 30, 3000),
      attempt('retrying', 100, 4000, 503),
      attempt('failed', 5000, 2 * 24 * 3600 * 1000, 500), // older than the window
    ]);
    const res = await api.call('GET', `/v1/endpoints/${created.id}`);
    expect(res.status).toBe(200);
    const health = endpointHealthSchema.parse(res.body);
    expect(health).toMatchObject({
      active: true,
      lastSuccessAt: null,
      consecutiveFailures: 0,
      successCount: 0,
    });
    expect(health.stats24h).toMatchObject({
      attempts: 4,
      succeeded: 3,
      failed: 1,
      successRate: 0.75,
      meanLatencyMs: 40,
    });
    expect(health.stats24h.p95LatencyMs).toBeCloseTo(89.5, 1);
  });

  it("shows the endpoint's circuit as the workers' breaker keeps it in Redis", async () => {
    const created = await register();
    const circuit = async () =>
      endpointHealthSchema.parse((await api.call('GET', `/v1/endpoints/${created.id}`)).body)
        .circuit;
    expect(await circuit()).toEqual({ state: 'closed', retryAt: null });

    // Three failed attempts through the same limits a worker uses open it.
    const limits = createEndpointLimits({
      redis: api.deps.redis,
      prefix: api.fleet.config.queuePrefix,
      maxInFlight: 0,
      failureThreshold: 3,
      cooldownMs: 60_000,
      leaseMs: 1000,
      logger: pino({ level: 'silent' }),
    });
    for (let i = 0; i < 3; i++) {
      const admission = await limits.admit(created.id);
      if (admission.admitted) await limits.release(admission.permit, 'failed');
    }
    const open = await circuit();
    expect(open?.state).toBe('open');
    expect(Date.parse(open!.retryAt!)).toBeGreaterThan(Date.now());
  });

  it('answers 404 for an unknown or malformed id', async () => {
    for (const id of ['ep_doesnotexist', 'nonsense', '%00']) {
      const res = await api.call('GET', `/v1/endpoints/${id}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found' });
    }
  });
});

describe('PATCH /v1/endpoints/:id', () => {
  it('changes url, event types, description and stale threshold (null restores the default)', async () => {
    const created = await register({ staleAfterDays: 10 });
    const res = await api.call('PATCH', `/v1/endpoints/${created.id}`, {
      body: {
        url: 'http://127.0.0.2:9/new',
        eventTypes: ['a.b', 'c.*'],
        description: 'changed',
        staleAfterDays: null,
      },
    });
    expect(res.status).toBe(200);
    expect(endpointSchema.parse(res.body)).toMatchObject({
      url: 'http://127.0.0.2:9/new',
      eventTypes: ['a.b', 'c.*'],
      description: 'changed',
      staleAfterDays: null,
    });
  });

  it('sets the failing threshold in hours, refuses one out of range, and null restores the default', async () => {
    const created = await register({ failingDisableAfterHours: 24 });
    expect(created).toMatchObject({ failingDisableAfterHours: 24, failingSince: null });
    const bad = await api.call('PATCH', `/v1/endpoints/${created.id}`, {
      body: { failingDisableAfterHours: 0 },
    });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({
      code: 'validation_failed',
      fields: [expect.objectContaining({ path: 'failingDisableAfterHours' })],
    });
    const res = await api.call('PATCH', `/v1/endpoints/${created.id}`, {
      body: { failingDisableAfterHours: null },
    });
    expect(endpointSchema.parse(res.body)).toMatchObject({ failingDisableAfterHours: null });
  });

  it('disables with reason manual, and re-enables restarting the stale clock', async () => {
    const created = await register();
    const off = await api.call('PATCH', `/v1/endpoints/${created.id}`, { body: { active: false } });
    expect(off.body).toMatchObject({ active: false, deactivationReason: 'manual' });
    expect(off.body.deactivatedAt).not.toBeNull();
    const on = await api.call('PATCH', `/v1/endpoints/${created.id}`, { body: { active: true } });
    expect(on.body).toMatchObject({ active: true, deactivationReason: null, deactivatedAt: null });
    expect(on.body.reactivatedAt).not.toBeNull();
  });

  it('keeps the sweep’s reason when asked to disable an endpoint that is already disabled', async () => {
    const created = await register();
    await setEndpointActive(api.fleet.db.db, created.id, false, 'stale');
    const res = await api.call('PATCH', `/v1/endpoints/${created.id}`, { body: { active: false } });
    expect(res.body).toMatchObject({ active: false, deactivationReason: 'stale' });
  });

  it('checks a new URL with the address guard', async () => {
    const created = await register();
    const res = await api.call('PATCH', `/v1/endpoints/${created.id}`, {
      body: { url: 'http://192.168.1.1/' },
    });
    expect(res.status).toBe(422);
    expect((await row(created.id)).url).toBe(url);
  });

  it('answers 404 for an unknown endpoint', async () => {
    const res = await api.call('PATCH', '/v1/endpoints/ep_missing', { body: { description: 'x' } });
    expect(res.status).toBe(404);
  });
});

describe('DELETE /v1/endpoints/:id', () => {
  it('deletes it; then GET and a second DELETE answer 404', async () => {
    const created = await register();
    expect((await api.call('DELETE', `/v1/endpoints/${created.id}`)).status).toBe(204);
    expect((await api.call('GET', `/v1/endpoints/${created.id}`)).status).toBe(404);
    expect((await api.call('DELETE', `/v1/endpoints/${created.id}`)).status).toBe(404);
  });
});

describe('POST /v1/endpoints/:id/test', () => {
  it('enqueues a test event for the endpoint now, whatever it subscribes to', async () => {
    const created = await register({ eventTypes: ['something.else'] });
    const res = await api.call('POST', `/v1/endpoints/${created.id}/test`);
    expect(res.status).toBe(202);
    const sent = sendMessageResponse.parse(res.body);
    expect(sent.endpointIds).toEqual([created.id]);
    expect(await api.fleet.producer.messagesQueue.getJob(messageJobId(sent.id))).toBeDefined();
    expect(await findMessage(api.fleet.db.db, sent.id)).toMatchObject({
      endpointIds: [created.id],
      eventType: TEST_EVENT_TYPE,
    });
  });

  it('takes an optional event type and payload', async () => {
    const created = await register();
    const res = await api.call('POST', `/v1/endpoints/${created.id}/test`, {
      body: { eventType: 'ping', payload: { hello: 1 } },
    });
    const sent = sendMessageResponse.parse(res.body);
    expect(await api.fleet.producer.messagesQueue.getJob(messageJobId(sent.id))).toBeDefined();
    expect(await findMessage(api.fleet.db.db, sent.id)).toMatchObject({
      eventType: 'ping',
      body: '{"hello":1}',
    });
  });

  it('answers 409 for a disabled endpoint and 404 for an unknown one', async () => {
    const created = await register();
    await api.call('PATCH', `/v1/endpoints/${created.id}`, { body: { active: false } });
    const res = await api.call('POST', `/v1/endpoints/${created.id}/test`);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'endpoint_inactive' });
    expect((await api.call('POST', '/v1/endpoints/ep_missing/test')).status).toBe(404);
  });
});

describe('POST /v1/endpoints/:id/rotate-secret', () => {
  it('answers a new secret and keeps the old one as previous_secret for the overlap', async () => {
    const created = await register();
    const res = await api.call('POST', `/v1/endpoints/${created.id}/rotate-secret`);
    expect(res.status).toBe(200);
    const rotated = rotatedSecretSchema.parse(res.body);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);
    const stored = await row(created.id);
    expect(stored).toMatchObject({ secret: rotated.secret, previousSecret: created.secret });
    const overlapMs = stored.previousSecretExpiresAt!.getTime() - Date.now();
    expect(overlapMs).toBeGreaterThan(api.fleet.config.secretRotationOverlapMs - 60_000);
    expect(overlapMs).toBeLessThanOrEqual(api.fleet.config.secretRotationOverlapMs);
    expect(rotated.previousSecretExpiresAt).toBe(stored.previousSecretExpiresAt!.toISOString());
  });

  it('answers 404 for an unknown endpoint', async () => {
    expect((await api.call('POST', '/v1/endpoints/ep_missing/rotate-secret')).status).toBe(404);
  });
});

describe('event type subscriptions', () => {
  it('match exact types, prefix wildcards and *, and nothing else', async () => {
    const make = async (eventTypes: string[]) => (await register({ eventTypes })).id;
    const exact = await make(['fan.invoice.paid']);
    const prefix = await make(['fan.invoice.*']);
    const top = await make(['fan.*']);
    const all = await make(['*']);
    const deeper = await make(['fan.invoice.paid.*']);
    const other = await make(['fan.order.*', 'fan.invoice']);
    const send = async (eventType: string) => {
      const res = await api.call('POST', '/v1/messages', {
        body: { eventType, payload: {}, endpointIds: [exact, prefix, top, all, deeper, other] },
      });
      return new Set(sendMessageResponse.parse(res.body).endpointIds);
    };
    expect(await send('fan.invoice.paid')).toEqual(new Set([exact, prefix, top, all]));
    expect(await send('fan.invoice.line.added')).toEqual(new Set([prefix, top, all]));
    expect(await send('fan.invoice')).toEqual(new Set([top, all, other]));
    expect(await send('unrelated')).toEqual(new Set([all]));
  });
});
