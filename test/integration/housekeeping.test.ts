import { oneShard } from '../../src/queueShards.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { insertEndpoint, rotateEndpointSecret } from '../../src/db/endpoints.js';
import { insertFannedOutMessages, markMessagesEnqueued } from '../../src/db/messages.js';
import { insertPortalSession, revokePortalSessions } from '../../src/db/portalSessions.js';
import { addMessageJobs, deliveryJobId, MESSAGES_QUEUE } from '../../src/jobs.js';
import { newId } from '../../src/ids.js';
import type { Housekeeping } from '../../src/worker/housekeeping.js';
import { openHousekeeping, type HousekeepingRig } from '../helpers/housekeepingRig.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { TEST_REDIS_URL, deleteQueueKeys } from '../helpers/testRedis.js';

let db: TestDatabase;
let redis: Redis;
let prefix: string;
let housekeeping: Housekeeping;
let rig: HousekeepingRig;
let messagesQueue: Queue;

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  await redis.quit();
  await db.drop();
});
beforeEach(async () => {
  await db.sql`truncate endpoints, messages, attempts, portal_sessions`;
  rig = openHousekeeping(db);
  ({ prefix, housekeeping } = rig);
  messagesQueue = new Queue(MESSAGES_QUEUE, { connection: redis, prefix });
});
afterEach(async () => {
  await messagesQueue.close();
  await rig.close();
  await deleteQueueKeys(prefix);
});

async function endpoint(): Promise<string> {
  return (await insertEndpoint(db.db, { url: 'https://receiver.example/hook' })).id;
}

/** A message stored as a send stores it, `ageSeconds` old, marked enqueued or not. */
async function storedMessage(endpointId: string, ageSeconds: number, enqueued: boolean) {
  const id = newId('msg');
  await insertFannedOutMessages(db.sql, [
    { id, eventType: 'invoice.paid', payloadJson: '{"n":1}', onlyIds: [endpointId] },
  ]);
  if (enqueued) await markMessagesEnqueued(db.sql, [id]);
  await db.sql`update messages set created_at = now() - make_interval(secs => ${ageSeconds})
               where id = ${id}`;
  return id;
}

async function attempt(messageId: string, endpointId: string): Promise<void> {
  await db.sql`insert into attempts (message_id, endpoint_id, attempt_number, attempted_at,
                                     outcome, duration_ms)
               values (${messageId}, ${endpointId}, 1, now(), 'succeeded', 5)`;
}

async function enqueuedAt(id: string): Promise<Date | null> {
  const [row] = await db.sql<{ enqueued_at: Date | null }[]>`
    select enqueued_at from messages where id = ${id}`;
  return row!.enqueued_at;
}

describe('housekeeping: messages stored but never queued', () => {
  it('queues a message left unmarked past the grace, once, and marks it', async () => {
    const ep = await endpoint();
    const cutShort = await storedMessage(ep, 90, false);
    const inFlight = await storedMessage(ep, 5, false);

    const first = await housekeeping.run();

    expect(first.queued).toBe(1);
    const job = await messagesQueue.getJob(cutShort);
    expect(job?.data).toMatchObject({ messageId: cutShort });
    // Its delivery window counts from acceptance, not from now.
    expect(Date.now() - job!.data.enqueuedAtMs).toBeGreaterThan(80_000);
    expect(await enqueuedAt(cutShort)).not.toBeNull();
    // A send still being written is left to its producer.
    expect(await messagesQueue.getJob(inFlight)).toBeUndefined();
    expect(await enqueuedAt(inFlight)).toBeNull();

    const second = await housekeeping.run();
    expect(second.queued).toBe(0);
    expect(await messagesQueue.getJobCountByTypes('waiting')).toBe(1);
  });

  it('only marks an unmarked message whose attempts show its job did reach Redis', async () => {
    const ep = await endpoint();
    const id = await storedMessage(ep, 90, false);
    await attempt(id, ep);

    const result = await housekeeping.run();

    expect(result).toMatchObject({ queued: 0, marked: 1 });
    expect(await messagesQueue.getJob(id)).toBeUndefined();
    expect(await enqueuedAt(id)).not.toBeNull();
  });
});

describe('housekeeping: jobs Redis lost', () => {
  it('queues again a queued message with no attempt whose job is gone, and only that one', async () => {
    const ep = await endpoint();
    const lost = await storedMessage(ep, 180, true);
    // Queued, then gone: as if Redis lost the write after acknowledging it.
    await addMessageJobs(oneShard(messagesQueue), [lost]);
    await (await messagesQueue.getJob(lost))!.remove();
    const waiting = await storedMessage(ep, 180, true);
    await addMessageJobs(oneShard(messagesQueue), [waiting]);
    const postponed = await storedMessage(ep, 180, true);
    await redis.set(`${prefix}:deliveries:${deliveryJobId(postponed, ep)}`, 'x');
    const attempted = await storedMessage(ep, 180, true);
    await attempt(attempted, ep);
    const young = await storedMessage(ep, 30, true);

    const result = await housekeeping.run();

    expect(result.requeued).toBe(1);
    expect(result.checked).toBe(4);
    expect(await messagesQueue.getJob(lost)).toBeDefined();
    for (const id of [postponed, attempted, young]) {
      expect(await messagesQueue.getJob(id)).toBeUndefined();
    }
    // Each message is looked at once: deleting the job again is not noticed a second time.
    await (await messagesQueue.getJob(lost))!.remove();
    expect((await housekeeping.run()).requeued).toBe(0);
  });
});

describe('housekeeping: expired previous secrets', () => {
  it('clears previous secrets past their overlap and keeps those still signing', async () => {
    const expired = await endpoint();
    const current = await endpoint();
    await rotateEndpointSecret(db.db, expired, 1000);
    await rotateEndpointSecret(db.db, current, 3_600_000);
    await db.sql`update endpoints set previous_secret_expires_at = now() - interval '1 second'
                 where id = ${expired}`;

    const result = await housekeeping.run();

    expect(result.secretsCleared).toBe(1);
    const rows = await db.sql<{ id: string; previous_secret: string | null }[]>`
      select id, previous_secret from endpoints where previous_secret_expires_at is not null`;
    expect(rows).toEqual([{ id: current, previous_secret: expect.stringMatching(/^whsec_/) }]);
    const [cleared] = await db.sql`select previous_secret from endpoints where id = ${expired}`;
    expect(cleared!.previous_secret).toBeNull();
  });

  it('clears many in bounded batches, through the partial index', async () => {
    await db.sql`insert into endpoints (id, url, secret, previous_secret, previous_secret_expires_at)
      select 'ep_' || i, 'https://r.example', 'whsec_x', 'whsec_old', now() - interval '1 hour'
      from generate_series(1, 2500) i`;
    await db.sql`analyze endpoints`;

    expect((await housekeeping.run()).secretsCleared).toBe(2500);
    const [plan] = await db.sql<{ 'QUERY PLAN': string }[]>`
      explain select id from endpoints
      where previous_secret is not null and previous_secret_expires_at <= now()
      order by previous_secret_expires_at limit 1000`;
    expect(plan!['QUERY PLAN']).not.toMatch(/Seq Scan/);
  });
});

describe('housekeeping: ended portal sessions', () => {
  it('deletes sessions that expired or were revoked over a day ago, and keeps the rest', async () => {
    const make = async (id: string) =>
      insertPortalSession(db.db, { id, ownerId: 'acct_1', tokenHash: 'h', expiresInSeconds: 3600 });
    await make('ps_live');
    await make('ps_expired_long_ago');
    await make('ps_expired_recently');
    await make('ps_revoked_long_ago');
    await make('ps_revoked_recently');
    await db.sql`update portal_sessions set expires_at = now() - interval '2 days'
                 where id = 'ps_expired_long_ago'`;
    await db.sql`update portal_sessions set expires_at = now() - interval '1 hour'
                 where id = 'ps_expired_recently'`;
    await revokePortalSessions(db.db, 'acct_1', 'ps_revoked_long_ago');
    await revokePortalSessions(db.db, 'acct_1', 'ps_revoked_recently');
    await db.sql`update portal_sessions set revoked_at = now() - interval '25 hours'
                 where id = 'ps_revoked_long_ago'`;

    const result = await housekeeping.run();

    expect(result.portalSessionsPruned).toBe(2);
    const left = await db.sql<{ id: string }[]>`select id from portal_sessions order by id`;
    expect(left.map((row) => row.id)).toEqual([
      'ps_expired_recently',
      'ps_live',
      'ps_revoked_recently',
    ]);
  });
});
