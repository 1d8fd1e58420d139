import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { OPERATOR_OWNER_ID } from '../../src/db/operatorMessages.js';
import { createOperatorEvents } from '../../src/delivery/operatorEvents.js';
import { MESSAGES_QUEUE } from '../../src/jobs.js';
import { createLogger } from '../../src/logger.js';
import { sweepStaleEndpoints } from '../../src/worker/staleSweep.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { deleteQueueKeys, TEST_REDIS_URL, testQueuePrefix } from '../helpers/testRedis.js';

let db: TestDatabase;
let queue: Queue;
const prefix = testQueuePrefix();
beforeAll(async () => {
  db = await createTestDatabase();
  queue = new Queue(MESSAGES_QUEUE, { connection: { url: TEST_REDIS_URL }, prefix });
});
afterAll(async () => {
  await queue.close();
  await deleteQueueKeys(prefix);
  await db.drop();
});
afterEach(async () => {
  await db.sql`truncate endpoints`;
});

/** An endpoint created `createdDaysAgo` days ago that never succeeded. */
async function endpointOf(ownerId: string | undefined, createdDaysAgo: number): Promise<string> {
  const { id } = await insertEndpoint(db.db, { url: 'https://receiver.example/hook', ownerId });
  await db.sql`update endpoints set created_at = now() - ${createdDaysAgo}::int * interval '24 hours'
    where id = ${id}`;
  return id;
}

interface EventBody {
  type: string;
  data: { endpointId: string; ownerId: string | null };
}

describe('operator events name the owner', () => {
  it('of each endpoint the sweep warns about or disables, and null for a platform-wide one', async () => {
    const staleOfA = await endpointOf('org_a', 400);
    const staleOfNone = await endpointOf(undefined, 400);
    const nearlyOfB = await endpointOf('org_b', 340);
    const config = loadConfig({
      DATABASE_URL: db.url,
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
      HOOKFLEET_OPERATOR_WEBHOOK_URL: 'http://127.0.0.1:9/operator',
      LOG_LEVEL: 'silent',
    });
    const logger = createLogger(config);
    const events = createOperatorEvents({ sql: db.sql, queue, config, logger });
    await sweepStaleEndpoints({ config, logger, dbClient: db, events });
    const rows = await db.sql<{ event_type: string; body: string }[]>`
      select event_type, body from messages where owner_id = ${OPERATOR_OWNER_ID}`;
    const owners = new Map(
      rows
        .map((row) => ({ type: row.event_type, data: JSON.parse(row.body) as EventBody['data'] }))
        .map((event) => [`${event.type} ${event.data.endpointId}`, event.data.ownerId]),
    );
    expect(owners).toEqual(
      new Map([
        [`endpoint.disabled ${staleOfA}`, 'org_a'],
        [`endpoint.disabled ${staleOfNone}`, null],
        [`endpoint.stale_warning ${nearlyOfB}`, 'org_b'],
      ]),
    );
  });
});
