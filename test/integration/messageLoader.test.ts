import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessageLoader } from '../../src/worker/messageLoader.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

let db: TestDatabase;
let sql: postgres.Sql;
const statements: string[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  // A client of its own whose every statement is counted as it is sent.
  sql = postgres(db.url, { debug: (_connection, query) => statements.push(query) });
  await db.sql`
    insert into messages (id, event_type, payload, body, endpoint_ids)
    values ('msg_a', 't', '{"a":1}', '{"a":1}', '{ep_1,ep_2}'),
           ('msg_b', 't', '{"b":2}', '{"b":2}', '{ep_3}')`;
});
afterAll(async () => {
  await sql.end();
  await db.drop();
});

describe('the fan-outs’ message loader', () => {
  it('reads the messages asked for in one turn with one query, each caller getting its own', async () => {
    const load = createMessageLoader(sql);
    await load('msg_warm_up');
    statements.length = 0;
    const [a, b, again, missing] = await Promise.all([
      load('msg_a'),
      load('msg_b'),
      load('msg_a'),
      load('msg_none'),
    ]);
    expect(statements.filter((text) => text.includes('from messages'))).toHaveLength(1);
    expect(a).toMatchObject({ body: '{"a":1}', endpointIds: ['ep_1', 'ep_2'] });
    expect(again).toEqual(a);
    expect(b).toMatchObject({ body: '{"b":2}', endpointIds: ['ep_3'] });
    // Pruned by its retention before it was fanned out: no message, not an error.
    expect(missing).toBeUndefined();
  });
});
