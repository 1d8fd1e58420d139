/**
 * The README's five-minute walkthrough in trial mode, as a new user runs it: `hookfleet start`
 * as a real process with its queues on PostgreSQL (HOOKFLEET_QUEUE_BACKEND=postgres) and
 * REDIS_URL pointing at a port where nothing listens, so any use of Redis would show. Register an
 * endpoint, send a message, see it retried after a 500 and delivered signed to a real receiver,
 * then the health page, Bull Board, /healthz, a sweep, and a clean stop. Own database, so BullMQ's
 * tables (schema `<prefix>_queues`) are this test's alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/freePort.js';
import { spawnHookfleet, type HookfleetProcess } from '../helpers/hookfleetProcess.js';
import { runHookfleet } from '../helpers/hookfleetCli.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { testQueuePrefix } from '../helpers/testRedis.js';
import { loadConfig } from '../../src/config.js';

const KEY = 'trial-key';
const ADMIN = { user: 'admin', password: 'trial-password' };
const basic = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;

let db: TestDatabase;
let receiver: Receiver;
let fleet: HookfleetProcess;
let base: string;
let deadRedisUrl: string;
const prefix = testQueuePrefix();

beforeAll(async () => {
  db = await createTestDatabase();
  // The walkthrough's receiver, except that its first answer is a 500: the retry must follow.
  receiver = await startReceiver((_request, index, res) => {
    res.writeHead(index === 0 ? 500 : 204).end();
  });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  deadRedisUrl = `redis://127.0.0.1:${await freePort()}`;
  fleet = spawnHookfleet(['start'], {
    HOOKFLEET_QUEUE_BACKEND: 'postgres',
    REDIS_URL: deadRedisUrl,
    DATABASE_URL: db.url,
    PORT: String(port),
    HOOKFLEET_QUEUE_PREFIX: prefix,
    HOOKFLEET_API_KEYS: KEY,
    HOOKFLEET_ADMIN_USER: ADMIN.user,
    HOOKFLEET_ADMIN_PASSWORD: ADMIN.password,
    HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
    HOOKFLEET_RETRY_SCHEDULE: '200ms,1m',
    HOOKFLEET_RECORDER_FLUSH_MS: '50',
  });
  await fleet.waitForLine(/^hookfleet is up$/);
}, 180_000);

afterAll(async () => {
  await fleet?.kill();
  await receiver?.close();
  await db?.drop();
});

/** The CLI's view of this fleet: its database and queue prefix. */
function cliConfig() {
  return loadConfig({ DATABASE_URL: db.url, HOOKFLEET_QUEUE_PREFIX: prefix });
}

async function call(method: string, path: string, body?: unknown, auth = `Bearer ${KEY}`) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: auth, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

describe('hookfleet start in trial mode (queues on PostgreSQL)', () => {
  let endpointId: string;
  let messageId: string;

  it('says loudly that it runs in trial mode, and why', () => {
    const banner = fleet.stdout.join('\n');
    expect(banner).toContain('TRIAL MODE: the queues run on PostgreSQL, not Redis');
    expect(banner).toContain('HOOKFLEET_QUEUE_BACKEND=postgres');
    expect(banner).toMatch(/For production, run Redis and set REDIS_URL/);
  });

  it('registers an endpoint, sends a message, retries after a 500 and delivers it signed', async () => {
    const created = await call('POST', '/v1/endpoints', {
      url: receiver.url,
      eventTypes: ['invoice.paid'],
    });
    expect(created.status, created.text).toBe(201);
    endpointId = created.json().id as string;
    expect(created.json().secret).toMatch(/^whsec_/);

    const sent = await call('POST', '/v1/messages', {
      eventType: 'invoice.paid',
      payload: { invoice: 'in_1', amount: 4200 },
    });
    expect(sent.status, sent.text).toBe(202);
    messageId = sent.json().id as string;
    expect(sent.json().deliveries).toBe(1);

    const [first, second] = await receiver.waitForRequests(2);
    for (const request of [first!, second!]) {
      expect(request.path).toBe(new URL(receiver.url).pathname);
      expect(request.headers['webhook-id']).toBe(messageId);
      expect(request.headers['webhook-signature']).toMatch(/^v1,/);
      expect(request.body).toContain('"invoice":"in_1"');
    }

    // The success recorder writes the attempts shortly after; the API shows both.
    await expect
      .poll(async () => (await call('GET', `/v1/messages/${messageId}`)).json(), {
        timeout: 15_000,
      })
      .toMatchObject({
        deliveries: [
          {
            endpointId,
            status: 'succeeded',
            attempts: [{ statusCode: 500 }, { statusCode: 204 }],
          },
        ],
      });
  }, 60_000);

  it('shows the endpoint on the health page with its last success', async () => {
    const page = await call('GET', `/admin/endpoints/${endpointId}`, undefined, basic);
    expect(page.status, page.text).toBe(200);
    expect(page.text).toContain(receiver.url);
    expect(page.text).toContain(messageId);
  });

  it('shows the three queues in Bull Board, the fan-out among completed messages', async () => {
    const board = await call(
      'GET',
      '/admin/queues/api/queues?activeQueue=messages&status=completed',
      undefined,
      basic,
    );
    expect(board.status, board.text).toBe(200);
    const queues = board.json().queues as { name: string; counts: Record<string, number> }[];
    expect(queues.map((q) => q.name).sort()).toEqual(['deliveries', 'maintenance', 'messages']);
    expect(queues.find((q) => q.name === 'messages')?.counts.completed).toBe(1);
    // The retry after the 500 was a delivery job of its own.
    expect(queues.find((q) => q.name === 'deliveries')?.counts.completed).toBe(1);
    // The schedulers of the sweep, the failing sweep and housekeeping each wait for their next run.
    expect(queues.find((q) => q.name === 'maintenance')?.counts.delayed).toBe(3);
  });

  it('answers /healthz with the queues on PostgreSQL', async () => {
    const health = await call('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: 'ok', queues: 'postgres', postgres: 'up' });
  });

  it('sends from the shell too: `hookfleet send` enqueues on the same PostgreSQL queues', async () => {
    const sent = await runHookfleet(cliConfig(), ['send', 'invoice.paid', '{"invoice":"in_2"}'], {
      HOOKFLEET_QUEUE_BACKEND: 'postgres',
      REDIS_URL: deadRedisUrl,
    });
    expect(sent.code, sent.stderr).toBe(0);
    const requests = await receiver.waitForRequests(3);
    expect(requests[2]!.body).toContain('"invoice":"in_2"');
  }, 60_000);

  it('runs a sweep against the same database', async () => {
    const sweep = await runHookfleet(cliConfig(), ['sweep', '--dry-run', '--json'], {
      REDIS_URL: deadRedisUrl,
    });
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(JSON.parse(sweep.stdout)).toMatchObject({ deactivated: 0 });
  });

  it('stops cleanly on SIGTERM', async () => {
    const stoppedAt = performance.now();
    await fleet.kill('SIGTERM');
    const { code, atMs } = await fleet.exited;
    expect(code, fleet.stderr.join('\n')).toBe(0);
    expect(atMs - stoppedAt).toBeLessThan(10_000);
    expect(fleet.stderr.join('\n')).not.toMatch(/ECONNREFUSED|redis/i);
  });
});
