import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdEndpointSchema, endpointSchema } from '../../src/api/contracts.js';
import { ADMIN, callApp, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { expectOneLineError, runHookfleet } from '../helpers/hookfleetCli.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

// A worker delivers in this file; the address guard lets it reach the receivers on 127.0.0.1.
let api: ApiHarness;
const receivers: Receiver[] = [];
beforeAll(async () => {
  // Rows stay cached for a minute unless a change is announced, as in production with many endpoints.
  api = await createApiHarness({
    HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
    HOOKFLEET_ENDPOINT_CACHE_MS: '60000',
  });
  api.fleet.startWorker();
});
afterAll(async () => {
  await api.close();
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(): Promise<Receiver> {
  const started = await startReceiver();
  receivers.push(started);
  return started;
}

async function register(body: Record<string, unknown>) {
  const res = await api.call('POST', '/v1/endpoints', { body });
  expect(res.status, res.text).toBe(201);
  return createdEndpointSchema.parse(res.body);
}

async function send(endpointId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await api.call('POST', '/v1/messages', {
      body: { eventType: 'rate.test', payload: { i }, endpointIds: [endpointId] },
    });
    expect(res.status, res.text).toBe(202);
  }
}

/** Most requests that arrived within any one second. */
function mostInOneSecond(times: number[]): number {
  return Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length));
}

describe('rateLimitPerSecond on POST and PATCH /v1/endpoints', () => {
  it('refuses a limit that is not a whole number from 1 to 10000, naming the field', async () => {
    for (const rateLimitPerSecond of [0, -1, 1.5, '10', 10_001]) {
      const res = await api.call('POST', '/v1/endpoints', {
        body: { url: 'http://127.0.0.1:9/h', rateLimitPerSecond },
      });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        code: 'validation_failed',
        fields: [expect.objectContaining({ path: 'rateLimitPerSecond' })],
      });
    }
  });

  it('stores the limit, shows it, changes it and removes it with null', async () => {
    const created = await register({ url: 'http://127.0.0.1:9/h', rateLimitPerSecond: 25 });
    expect(created.rateLimitPerSecond).toBe(25);
    const shown = await api.call('GET', `/v1/endpoints/${created.id}`);
    expect(shown.body).toMatchObject({ rateLimitPerSecond: 25 });
    const changed = await api.call('PATCH', `/v1/endpoints/${created.id}`, {
      body: { rateLimitPerSecond: 7 },
    });
    expect(endpointSchema.parse(changed.body).rateLimitPerSecond).toBe(7);
    const page = await callApp(api.app, 'GET', `/admin/endpoints/${created.id}`, {
      anonymous: true,
      headers: {
        authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`,
      },
    });
    expect(page.text).toMatch(/<dd data-fact="rateLimit">\s*7 requests per second\s*<\/dd>/);
    const removed = await api.call('PATCH', `/v1/endpoints/${created.id}`, {
      body: { rateLimitPerSecond: null },
    });
    expect(endpointSchema.parse(removed.body).rateLimitPerSecond).toBeNull();
    const plain = await register({ url: 'http://127.0.0.1:9/h' });
    expect(plain.rateLimitPerSecond).toBeNull();
  });
});

describe('delivering to an endpoint with a requests-per-second limit', () => {
  it('spreads a burst over time at the limit, and delivers all of it', async () => {
    const limited = await receiver();
    const endpoint = await register({ url: limited.url, rateLimitPerSecond: 5 });
    await send(endpoint.id, 15);
    const requests = await limited.waitForRequests(15);
    const times = requests.map((r) => r.receivedAtMs);
    expect(mostInOneSecond(times)).toBeLessThanOrEqual(6);
    // 15 at 5 a second: the last is at least 2 s after the first.
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(2000);
  });

  it('applies a limit set by PATCH to deliveries of a worker that has the endpoint cached', async () => {
    const target = await receiver();
    const endpoint = await register({ url: target.url });
    await send(endpoint.id, 3);
    await target.waitForRequests(3); // the worker has read (and cached) the row
    const res = await api.call('PATCH', `/v1/endpoints/${endpoint.id}`, {
      body: { rateLimitPerSecond: 4 },
    });
    expect(res.status).toBe(200);
    const before = target.requests.length;
    await send(endpoint.id, 12);
    const times = (await target.waitForRequests(before + 12))
      .slice(before)
      .map((r) => r.receivedAtMs);
    expect(mostInOneSecond(times)).toBeLessThanOrEqual(5);
  });
});

describe('hookfleet endpoints add --rate-limit', () => {
  it('sets the limit, which show prints, and refuses a bad value in one line', async () => {
    const added = await runHookfleet(api.fleet.config, [
      'endpoints',
      'add',
      'http://127.0.0.1:9/cli',
      '--rate-limit',
      '12',
      '--json',
    ]);
    expect(added.code, added.stderr).toBe(0);
    const { id, rateLimitPerSecond } = JSON.parse(added.stdout) as {
      id: string;
      rateLimitPerSecond: number;
    };
    expect(rateLimitPerSecond).toBe(12);
    const shown = await runHookfleet(api.fleet.config, ['endpoints', 'show', id]);
    expect(shown.stdout).toMatch(/rate limit\s+12 requests per second/);
    expectOneLineError(
      await runHookfleet(api.fleet.config, [
        'endpoints',
        'add',
        'http://127.0.0.1:9/cli',
        '--rate-limit',
        'fast',
      ]),
      2,
      /--rate-limit takes a whole number/,
    );
  });
});
