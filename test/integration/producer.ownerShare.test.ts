import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { ownerQueueKey } from '../../src/delivery/ownerQueue.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';
import { TEST_REDIS_URL } from '../helpers/testRedis.js';

const SHARE = 10;
const FLOOD = 300;

let fleet: TestFleet;
const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
const receivers: Receiver[] = [];
beforeAll(async () => {
  fleet = await createTestFleet({ HOOKFLEET_OWNER_QUEUE_SHARE: String(SHARE) });
});
afterAll(async () => {
  await fleet.close();
  await Promise.all(receivers.map((r) => r.close()));
  await redis.quit();
});

async function endpointOf(ownerId: string) {
  const receiver = await startReceiver();
  receivers.push(receiver);
  const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url, ownerId });
  return { receiver, endpoint };
}

function send(ownerId: string, count: number) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      fleet.producer.send({ ownerId, eventType: 'share.test', payload: { i } }),
    ),
  );
}

describe("each owner's share of the messages queue", () => {
  it(
    "serves another owner's messages before a flood that was queued first",
    { timeout: 120_000 },
    async () => {
      const flood = await endpointOf('acct_flood');
      const quiet = await endpointOf('acct_quiet');
      const other = await endpointOf('acct_other');
      await fleet.producer.messagesQueue.pause();
      await send('acct_flood', FLOOD);
      await send('acct_quiet', 5);
      await send('acct_other', 3 * SHARE);
      expect(Number(await redis.get(ownerQueueKey(fleet.config.queuePrefix, 'acct_flood')))).toBe(
        FLOOD,
      );
      // Few fan-outs at a time, so the order the worker takes them in shows in what arrives. No
      // in-flight cap per endpoint: with one, the flood's fan-outs running side by side postpone
      // deliveries to its one endpoint into delivery jobs, which come back outside the owners'
      // order (48 flood deliveries were seen by the last check, against 34 from the order alone).
      fleet.startWorker({ HOOKFLEET_CONCURRENCY: '4', HOOKFLEET_ENDPOINT_MAX_IN_FLIGHT: '0' });
      await fleet.producer.messagesQueue.resume();

      await quiet.receiver.waitForRequests(5);
      // First in, first out, the quiet owner's messages came after all 300 of the flood. Now only
      // the flood's first SHARE go before them, plus the prioritized fan-outs the worker took
      // alongside theirs: it runs several fan-outs at once and their POSTs race (20 seen in CI).
      expect(flood.receiver.requests.length).toBeLessThan(FLOOD / 4);
      // Owners over their share are served in turn: when the other owner's last message arrives,
      // the flood has had about as many beyond its share, not all of them.
      await other.receiver.waitForRequests(3 * SHARE);
      expect(flood.receiver.requests.length).toBeLessThan(3 * SHARE + 10);

      await flood.receiver.waitForRequests(FLOOD);
      // Every fan-out gave its place back: the counts are gone.
      await expect
        .poll(() => redis.exists(ownerQueueKey(fleet.config.queuePrefix, 'acct_flood')))
        .toBe(0);
      expect(await redis.exists(ownerQueueKey(fleet.config.queuePrefix, 'acct_quiet'))).toBe(0);
    },
  );
});
