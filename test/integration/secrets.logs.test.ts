import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryJobId } from '../../src/jobs.js';
import { createMetrics } from '../../src/metrics.js';
import { createApp } from '../../src/api/app.js';
import { startWorker } from '../../src/worker/startWorker.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// Everything hookfleet logs, at the most verbose level, from the API and a worker alike.
const lines: string[] = [];
const logger = pino(
  { level: 'trace' },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  }),
);

const API_KEY = 'hfk_log_capture_key_7f3a9c2e';
let fleet: TestFleet;
let redis: Redis;
let ok: Receiver;
let failing: Receiver;

beforeAll(async () => {
  fleet = await createTestFleet({ HOOKFLEET_API_KEYS: API_KEY, LOG_LEVEL: 'trace' });
  redis = new Redis(fleet.config.redisUrl);
  ok = await startReceiver();
  failing = await startReceiver(
    (_req, index, res) => void res.writeHead(index % 2 ? 410 : 500).end('nope'),
  );
});
afterAll(async () => {
  await ok.close();
  await failing.close();
  await redis.quit();
  await fleet.close();
});

describe('secrets hygiene', () => {
  it('never writes a secret, a signature or an API key to any log line', async () => {
    const worker = startWorker({ config: fleet.config, logger, dbClient: fleet.db });
    const app = createApp({
      config: fleet.config,
      logger,
      dbClient: fleet.db,
      producer: fleet.producer,
      metrics: createMetrics({ defaultMetrics: false }),
      redis,
    });
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const secrets: string[] = [];
    const good = await call('POST', '/v1/endpoints', { url: ok.url });
    const bad = await call('POST', '/v1/endpoints', { url: failing.url });
    secrets.push(String(good.secret), String(bad.secret));

    const sendAll = async (count: number) => {
      const ends = [];
      for (let i = 0; i < count; i++) {
        const sent = await call('POST', '/v1/messages', { eventType: 'log.test', payload: { i } });
        for (const endpointId of sent.endpointIds as string[]) {
          ends.push(fleet.waitForDelivery(deliveryJobId(String(sent.id), endpointId)));
        }
      }
      return Promise.all(ends);
    };
    const before = await sendAll(3);
    expect(before.filter((end) => end.state === 'failed')).toHaveLength(3);
    // Its 410 disabled the failing endpoint; another takes its place for the second round.
    expect(await call('GET', `/v1/endpoints/${String(bad.id)}`)).toMatchObject({
      active: false,
      deactivationReason: 'gone',
    });
    const worse = await call('POST', '/v1/endpoints', { url: failing.url });
    secrets.push(String(worse.secret));

    const rotated = await call('POST', `/v1/endpoints/${String(good.id)}/rotate-secret`);
    secrets.push(String(rotated.secret));
    await sendAll(3);
    // Requests with wrong credentials and bad input are logged too; they must not echo the key.
    await app.request('/v1/endpoints', { headers: { authorization: `Bearer ${API_KEY}x` } });
    await app.request('/v1/messages', {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: '{"eventType": ',
    });
    await worker.close();

    const signatures = [...ok.requests, ...failing.requests].flatMap((r) =>
      String(r.headers['webhook-signature'])
        .split(' ')
        .map((entry) => entry.slice(3)),
    );
    expect(signatures.length).toBeGreaterThanOrEqual(12);
    // The secrets as sent and as raw key material (base64 after the whsec_ prefix).
    const forbidden = [
      ...secrets,
      ...secrets.map((s) => s.slice('whsec_'.length)),
      ...signatures,
      API_KEY,
    ];
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      for (const value of forbidden) expect(line).not.toContain(value);
    }
  });
});
