/**
 * The api process killed (SIGKILL) after a message's INSERT and before its job reached Redis:
 * the reconciler finds the message and queues it. The api talks to Redis through a proxy that
 * holds its bytes, so the enqueue is under way but never arrives, as when a process dies mid-send.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { MESSAGES_QUEUE } from '../../src/jobs.js';
import { freePort } from '../helpers/freePort.js';
import { openHousekeeping } from '../helpers/housekeepingRig.js';
import { spawnHookfleet, type HookfleetProcess } from '../helpers/hookfleetProcess.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { TEST_REDIS_URL, deleteQueueKeys, testQueuePrefix } from '../helpers/testRedis.js';

let db: TestDatabase;
let redis: Redis;
let proxy: TcpProxy;
let api: HookfleetProcess | undefined;
const prefix = testQueuePrefix();

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  proxy = await startTcpProxy(Number(new URL(TEST_REDIS_URL).port || 6379));
});
afterAll(async () => {
  await api?.kill();
  await proxy.close();
  await redis.quit();
  await deleteQueueKeys(prefix);
  await db.drop();
});

async function storedMessage(): Promise<{ id: string; enqueued_at: Date | null } | undefined> {
  const [row] = await db.sql<{ id: string; enqueued_at: Date | null }[]>`
    select id, enqueued_at from messages where event_type = 'order.created'`;
  return row;
}

describe('the api killed between storing a message and queueing it', () => {
  it('leaves the message unmarked, and the reconciler queues it', async () => {
    const port = await freePort();
    api = spawnHookfleet(['api'], {
      REDIS_URL: proxy.through(TEST_REDIS_URL),
      DATABASE_URL: db.url,
      HOOKFLEET_QUEUE_PREFIX: prefix,
      PORT: String(port),
      HOOKFLEET_API_KEYS: 'test-key',
      HOOKFLEET_ADMIN_USER: 'admin',
      HOOKFLEET_ADMIN_PASSWORD: 'admin',
    });
    await api.waitForLine(/"msg":"api listening"/);
    await insertEndpoint(db.db, { url: 'https://receiver.example/hook' });

    proxy.hold();
    const send = fetch(`http://127.0.0.1:${port}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key', 'content-type': 'application/json' },
      body: JSON.stringify({ eventType: 'order.created', payload: { order: 7 } }),
    }).catch((error: unknown) => error);
    let stored = await storedMessage();
    while (stored === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      stored = await storedMessage();
    }
    await api.kill('SIGKILL');
    expect(await send).toBeInstanceOf(Error);
    proxy.release();

    const messages = new Queue(MESSAGES_QUEUE, { connection: redis, prefix });
    try {
      // Stored, not marked, no job: before the reconciler, nothing would ever deliver it.
      expect((await storedMessage())?.enqueued_at).toBeNull();
      expect(await messages.getJob(stored.id)).toBeUndefined();

      // Past the reconciler's grace (a send still being written is left alone).
      await db.sql`update messages set created_at = now() - interval '90 seconds'`;
      const rig = openHousekeeping(db, prefix);
      try {
        expect(await rig.housekeeping.run()).toMatchObject({ queued: 1 });
      } finally {
        await rig.close();
      }
      expect((await messages.getJob(stored.id))?.data).toMatchObject({ messageId: stored.id });
      expect((await storedMessage())?.enqueued_at).not.toBeNull();
    } finally {
      await messages.close();
    }
  });
});
