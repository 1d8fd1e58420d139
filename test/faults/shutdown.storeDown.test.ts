/**
 * SIGTERM while Redis or PostgreSQL is down: `hookfleet start` exits within 5 s instead of
 * waiting its whole shutdown budget (30 s by default) on connections that will not answer.
 * Redis is a redis-server of the test's own, killed; PostgreSQL is reached through a TCP proxy
 * that is cut.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/freePort.js';
import { spawnHookfleet, type HookfleetProcess } from '../helpers/hookfleetProcess.js';
import { startRedisServer, type RedisServer } from '../helpers/redisServer.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { TEST_REDIS_URL, deleteQueueKeys, testQueuePrefix } from '../helpers/testRedis.js';

const EXIT_WITHIN_MS = 5000;

let database: TestDatabase;
let prefix: string;
let running: HookfleetProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
});
afterEach(async () => {
  await running?.kill();
  running = undefined;
});
afterAll(async () => {
  await database.drop();
  await deleteQueueKeys(prefix);
});

async function startFleet(env: Record<string, string>): Promise<HookfleetProcess> {
  running = spawnHookfleet(['start'], {
    HOOKFLEET_QUEUE_PREFIX: prefix,
    PORT: String(await freePort()),
    HOOKFLEET_API_KEYS: 'test-key',
    HOOKFLEET_ADMIN_USER: 'admin',
    HOOKFLEET_ADMIN_PASSWORD: 'admin',
    ...env,
  });
  await running.waitForLine(/"msg":"hookfleet is up"/);
  return running;
}

async function secondsToExitAfterSigterm(fleet: HookfleetProcess): Promise<number> {
  const signalledAt = performance.now();
  fleet.child.kill('SIGTERM');
  const timer = setTimeout(() => void fleet.kill(), 20_000);
  const { atMs } = await fleet.exited;
  clearTimeout(timer);
  return atMs - signalledAt;
}

describe('SIGTERM with a backing store down', () => {
  let redis: RedisServer | undefined;
  let proxy: TcpProxy | undefined;
  afterAll(async () => {
    await redis?.close();
    await proxy?.close();
  });

  it('exits within 5 s when Redis is down', async () => {
    redis = await startRedisServer();
    const fleet = await startFleet({ REDIS_URL: redis.url, DATABASE_URL: database.url });
    await redis.stop('sigkill');
    expect(await secondsToExitAfterSigterm(fleet)).toBeLessThan(EXIT_WITHIN_MS);
  });

  it('exits within 5 s when PostgreSQL is down', async () => {
    proxy = await startTcpProxy(Number(new URL(database.url).port));
    const fleet = await startFleet({
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: proxy.through(database.url),
    });
    proxy.cut();
    expect(await secondsToExitAfterSigterm(fleet)).toBeLessThan(EXIT_WITHIN_MS);
  });
});
