import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { createLogger } from '../../src/logger.js';
import { sweepStaleEndpoints } from '../../src/worker/staleSweep.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
let receiver: Receiver;
beforeAll(async () => {
  db = await createTestDatabase();
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
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
  data: { endpoints: { id: string; ownerId: string | null }[] };
}

describe('operator events name the owner', () => {
  it('of each endpoint the sweep warns about or disables, and null for a platform-wide one', async () => {
    const staleOfA = await endpointOf('org_a', 400);
    const staleOfNone = await endpointOf(undefined, 400);
    const nearlyOfB = await endpointOf('org_b', 340);
    const config = loadConfig({
      DATABASE_URL: db.url,
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
      HOOKFLEET_OPERATOR_WEBHOOK_URL: receiver.url,
      LOG_LEVEL: 'silent',
    });
    await sweepStaleEndpoints({ config, logger: createLogger(config), dbClient: db });
    const owners = new Map(
      receiver.requests
        .map((request) => JSON.parse(request.body) as EventBody)
        .flatMap((event) => event.data.endpoints.map((e) => [`${event.type} ${e.id}`, e.ownerId])),
    );
    expect(owners).toEqual(
      new Map([
        [`endpoint.deactivated ${staleOfA}`, 'org_a'],
        [`endpoint.deactivated ${staleOfNone}`, null],
        [`endpoint.stale_warning ${nearlyOfB}`, 'org_b'],
      ]),
    );
  });
});
