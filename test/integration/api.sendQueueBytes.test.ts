import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { errorSchema } from '../../src/api/contracts.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

const QUEUE_BYTES = 1024 * 1024;
/** Each payload's JSON is a little over 200,000 bytes: five fit in the bound, six do not. */
const PAYLOAD = { blob: 'x'.repeat(200_000) };

let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_SEND_QUEUE_MAX_BYTES: String(QUEUE_BYTES) });
});
afterAll(async () => {
  await api.close();
});

/** Resolves once a statement of this database waits for a lock (the send batch's INSERT). */
async function untilInsertWaits(): Promise<void> {
  for (;;) {
    const [row] = await api.fleet.db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`;
    if (row!.n > 0) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('POST /v1/messages with large payloads while PostgreSQL is slow', () => {
  it('answers 503 overloaded with Retry-After past HOOKFLEET_SEND_QUEUE_MAX_BYTES, and stores the rest', async () => {
    await insertEndpoint(api.fleet.db.db, { url: 'http://127.0.0.1:9/hook', eventTypes: ['big'] });
    // A transaction holding the messages table: the batch in flight waits on it, and the sends
    // behind it pile up in the api's queue as they would behind a slow PostgreSQL.
    const lock = await api.fleet.db.sql.reserve();
    await lock`begin`;
    await lock`lock table messages in access exclusive mode`;
    const send = () =>
      api.call('POST', '/v1/messages', { body: { eventType: 'big', payload: PAYLOAD } });
    try {
      const first = send();
      await untilInsertWaits();
      const queued = Array.from({ length: 11 }, send);
      // The refusals come at once, while the lock is still held.
      let settled = 0;
      await new Promise<void>((resolve) => {
        for (const response of queued) {
          void response.then(() => {
            if (++settled === 6) resolve();
          });
        }
      });
      expect((await Promise.all(queued.slice(5))).map((response) => response.status)).toEqual(
        Array(6).fill(503),
      );
      await lock`rollback`;
      const responses = await Promise.all([first, ...queued]);

      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 202)).toHaveLength(6);
      const overloaded = responses.filter((response) => response.status === 503);
      expect(overloaded).toHaveLength(6);
      for (const response of overloaded) {
        expect(errorSchema.parse(response.body)).toMatchObject({ code: 'overloaded' });
        expect((response.body as { detail: string }).detail).toMatch(/MiB of payloads/);
        expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      }
      const [row] = await api.fleet.db.sql<{ n: number }[]>`
        select count(*)::int as n from messages where event_type = 'big'`;
      expect(row!.n).toBe(6);
    } finally {
      lock.release();
    }
  });
});
