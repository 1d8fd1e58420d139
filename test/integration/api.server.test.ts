import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest, Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DELIVERY_JOB } from '../../src/jobs.js';
import type { DbClient } from '../../src/db/client.js';
import { createApp } from '../../src/api/app.js';
import { healthSchema } from '../../src/api/contracts.js';
import { startApiServer, type RunningApiServer } from '../../src/api/server.js';
import {
  ADMIN,
  API_KEY,
  callApp,
  createApiHarness,
  type ApiHarness,
} from '../helpers/apiHarness.js';
import { TEST_REDIS_URL } from '../helpers/testRedis.js';
import { freePort } from '../helpers/freePort.js';

// No worker runs in this file: jobs stay waiting, which the queue-depth gauge shows.
let api: ApiHarness;
let server: RunningApiServer;
let base: string;
beforeAll(async () => {
  api = await createApiHarness();
  server = await startApiServer(api.deps, { port: 0, hostname: '127.0.0.1' });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server.close();
  await api.close();
});

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const admin = { authorization: basic(ADMIN.user, ADMIN.password) };
const bearer = { authorization: `Bearer ${API_KEY}` };

describe('startApiServer', () => {
  it('serves /healthz, with Redis and PostgreSQL up', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(healthSchema.parse(await res.json())).toEqual({
      status: 'ok',
      redis: 'up',
      postgres: 'up',
    });
  });

  it('serves Prometheus metrics, with the depth of both queues by state read at scrape time', async () => {
    const endpoint = await fetch(`${base}/v1/endpoints`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', eventTypes: ['metrics.test'] }),
    });
    expect(endpoint.status).toBe(201);
    const before = await (await fetch(`${base}/metrics`)).text();
    const waiting = (text: string) =>
      Number(/hookfleet_queue_jobs\{queue="messages",state="waiting"\} (\d+)/.exec(text)?.[1]);
    const sent = await fetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ eventType: 'metrics.test', payload: {} }),
    });
    expect(sent.status).toBe(202);
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(waiting(text)).toBe(waiting(before) + 1);
    expect(text).toContain('hookfleet_queue_jobs{queue="maintenance",state="delayed"} 0');
    expect(text).toContain('hookfleet_deliveries_total');
  });

  it('serves /openapi.json without credentials, generated from the contracts', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
      components: {
        schemas: Record<string, { additionalProperties?: unknown; required?: string[] }>;
      };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/endpoints',
        '/v1/endpoints/{id}',
        '/v1/endpoints/{id}/test',
        '/v1/endpoints/{id}/rotate-secret',
        '/v1/messages',
        '/v1/messages/{id}',
        '/v1/messages/{id}/redeliver',
        '/healthz',
        '/metrics',
      ]),
    );
    expect(doc.components.schemas.CreateEndpointRequest).toMatchObject({
      additionalProperties: false,
      required: ['url'],
    });
    expect(doc.components.schemas.SendMessageRequest?.required).toEqual(['eventType', 'payload']);
    expect(JSON.stringify(doc)).not.toContain('__shared');
  });

  it('asks for the admin password on /admin/queues, then serves Bull Board', async () => {
    const anonymous = await fetch(`${base}/admin/queues`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic /);
    const wrong = await fetch(`${base}/admin/queues`, {
      headers: { authorization: basic(ADMIN.user, 'wrong') },
    });
    expect(wrong.status).toBe(401);
    const page = await fetch(`${base}/admin/queues`, { headers: admin });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const slash = await fetch(`${base}/admin/queues/`, { headers: admin, redirect: 'manual' });
    expect(slash.status).toBe(301);
    expect(slash.headers.get('location')).toBe('/admin/queues');
    const apiKeyOnly = await fetch(`${base}/admin/queues`, { headers: bearer });
    expect(apiKeyOnly.status).toBe(401);
  });

  it('shows job data in Bull Board with secret-looking fields redacted', async () => {
    const job = await api.fleet.producer.deliveriesQueue.add(DELIVERY_JOB, {
      messageId: 'msg_board',
      nested: { clientSecret: 's3cret', webhookSignature: 'v1,abc' },
      Authorization: 'Bearer x',
      note: 'visible',
    });
    const res = await fetch(
      `${base}/admin/queues/api/queues?activeQueue=deliveries&status=waiting&page=1&jobsPerPage=50`,
      {
        headers: admin,
      },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      queues: {
        name: string;
        counts: Record<string, number>;
        jobs: { id: string; data: unknown }[];
      }[];
    };
    const deliveries = body.queues.find((q) => q.name === 'deliveries');
    expect(deliveries?.counts.waiting).toBeGreaterThanOrEqual(1);
    expect(body.queues.map((q) => q.name)).toEqual(
      expect.arrayContaining(['messages', 'deliveries', 'maintenance']),
    );
    const shown = deliveries?.jobs.find((j) => j.id === job.id);
    expect(shown?.data).toEqual({
      messageId: 'msg_board',
      nested: { clientSecret: '[redacted]', webhookSignature: '[redacted]' },
      Authorization: '[redacted]',
      note: 'visible',
    });
    await job.remove();
  });

  it('refuses dashboard changes a browser marks as cross-site, and allows same-origin ones', async () => {
    const pause = (headers: Record<string, string>) =>
      fetch(`${base}/admin/queues/api/queues/deliveries/pause`, {
        method: 'PUT',
        headers: { ...admin, ...headers },
      });
    const queue = api.fleet.producer.deliveriesQueue;
    const crossSite: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'http://evil.example' },
    ];
    for (const headers of crossSite) {
      const res = await pause(headers);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'forbidden' });
    }
    expect(await queue.isPaused()).toBe(false);
    const res = await pause({ 'sec-fetch-site': 'same-origin', origin: base });
    expect(res.status).toBeLessThan(300);
    expect(await queue.isPaused()).toBe(true);
    await queue.resume();
  });

  it('closes idle keep-alive connections, stops accepting, and can be closed twice', async () => {
    const own = await startApiServer(api.deps, {
      port: 0,
      hostname: '127.0.0.1',
      closeGraceMs: 20_000,
    });
    const agent = new Agent({ keepAlive: true });
    try {
      // One request, answered; its connection then sits idle in the agent's keep-alive pool.
      const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: own.port, path: '/healthz', agent },
          (res) => {
            res.resume();
            res.on('end', () => resolve(req.socket!));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(socket.destroyed).toBe(false);
      const socketClosed = once(socket, 'close');
      const first = own.close();
      expect(own.close()).toBe(first);
      await Promise.all([first, socketClosed]);
      await expect(fetch(`http://127.0.0.1:${own.port}/healthz`)).rejects.toThrow();
    } finally {
      agent.destroy();
      await own.close();
    }
  });
});

describe('internal errors', () => {
  it('answer a bare 500 with an id that is logged with the error, never a stack trace', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
    const broken = new Proxy(
      {},
      {
        get() {
          throw new Error('database exploded at secret place');
        },
      },
    );
    const app = createApp({
      ...api.deps,
      logger,
      dbClient: { db: broken, sql: broken, close: () => Promise.resolve() } as unknown as DbClient,
    });
    const res = await callApp(app, 'GET', '/v1/endpoints/ep_abc');
    expect(res.status).toBe(500);
    expect(Object.keys(res.body).sort()).toEqual(['code', 'detail']);
    expect(res.body.code).toBe('internal');
    const id = /^internal error \(id ([0-9a-f]+)\)$/.exec(String(res.body.detail))?.[1];
    expect(id).toBeDefined();
    expect(res.text).not.toContain('exploded');
    const logged = lines.map(
      (line) => JSON.parse(line) as { errorId?: string; err?: { message?: string } },
    );
    expect(logged.find((entry) => entry.errorId === id)?.err?.message).toContain('exploded');
  });
});

const API_MODULE = pathToFileURL(
  fileURLToPath(new URL('../../src/cli/api.ts', import.meta.url)),
).href;

describe('hookfleet api', () => {
  it('--help lists the flags and the environment it reads', async () => {
    const { run } = await import('../../src/cli/api.js');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await run(['--help'])).toBe(0);
      const help = String(log.mock.calls[0]?.[0]);
      for (const word of [
        '--help',
        'DATABASE_URL',
        'REDIS_URL',
        'PORT',
        'HOOKFLEET_API_KEYS',
        'HOOKFLEET_ADMIN_PASSWORD',
      ]) {
        expect(help).toContain(word);
      }
    } finally {
      log.mockRestore();
    }
  });

  it('refuses to start without DATABASE_URL, in one line', async () => {
    const { run } = await import('../../src/cli/api.js');
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const error: unknown = await run([]).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'config_missing' });
      expect((error as Error).message).toContain('DATABASE_URL');
      expect((error as Error).message).not.toContain('\n');
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });

  it('runs as a process: generated credentials printed once, serves /v1, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const script = `import { run } from ${JSON.stringify(API_MODULE)}; process.exitCode = await run([]);`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        env: {
          ...process.env,
          DATABASE_URL: api.fleet.db.url,
          REDIS_URL: TEST_REDIS_URL,
          PORT: String(port),
          HOOKFLEET_QUEUE_PREFIX: api.fleet.config.queuePrefix,
          HOOKFLEET_API_KEYS: '',
          HOOKFLEET_ADMIN_USER: '',
          HOOKFLEET_ADMIN_PASSWORD: '',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = once(child, 'exit');
    try {
      const logs: Record<string, unknown>[] = [];
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          // Log lines are JSON when stdout is not a terminal; the start banner is plain text.
          if (!line.startsWith('{')) return;
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'api listening') resolve();
        });
        void exited.then(([code]) =>
          reject(new Error(`api exited with ${String(code)} before listening`)),
        );
      });
      const generated = logs.filter((entry) => entry.generatedApiKey !== undefined);
      expect(generated).toHaveLength(1);
      const key = String(generated[0]!.generatedApiKey);
      expect(generated[0]!.generatedAdminPassword).toEqual(expect.any(String));
      const res = await fetch(`http://127.0.0.1:${port}/v1/endpoints`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});
