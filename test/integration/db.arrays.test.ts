import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDbClient, pgArray } from '../../src/db/client.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { insertFannedOutMessage } from '../../src/db/messages.js';
import { newId } from '../../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('array parameters', () => {
  it('round-trip any text, NULLs, numbers and timestamps through pgArray', async () => {
    const texts = [
      'plain',
      'a"quote',
      'back\\slash',
      'comma,inside',
      '{braces}',
      ' spaced ',
      '',
      'NULL',
      null,
    ];
    const [row] = await db.sql<{ texts: (string | null)[]; ints: number[]; times: string[] }[]>`
      select array_to_json(${pgArray(texts)}::text[]) as texts, array_to_json(${pgArray([1, -2, 30000])}::int[]) as ints,
             array_to_json(${pgArray(['2026-01-02T03:04:05.678Z'])}::timestamptz[]) as times`;
    // Read back as JSON: postgres.js's own array parser turns a NULL element into "NULL".
    expect(row!.texts).toEqual(texts);
    expect(row!.ints).toEqual([1, -2, 30000]);
    expect(row!.times.map((t) => new Date(t).toISOString())).toEqual(['2026-01-02T03:04:05.678Z']);
  });

  it('work on a client whose first connections are still opening (many sends at once after start-up)', async () => {
    const endpoint = await insertEndpoint(db.db, {
      url: 'http://127.0.0.1/x',
      eventTypes: ['a.b'],
    });
    const fresh = createDbClient(db.url, { max: 10 });
    try {
      const results = await Promise.all(
        Array.from({ length: 30 }, () =>
          insertFannedOutMessage(fresh.sql, {
            id: newId('msg'),
            eventType: 'a.b',
            payloadJson: '{}',
          }),
        ),
      );
      expect(results.every((ids) => ids?.[0] === endpoint.id)).toBe(true);
    } finally {
      await fresh.close();
    }
  });
});
