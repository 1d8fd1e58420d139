/**
 * Upgrading a database that has endpoints and messages to the envelope: what was there keeps
 * receiving the raw payload, and what comes after gets the envelope by default.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDbClient } from '../../src/db/client.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { MIGRATIONS_FOLDER, runMigrations } from '../../src/db/migrate.js';
import { ADMIN_DATABASE_URL, databaseUrl } from '../helpers/testDatabase.js';

const name = `hookfleet_test_${randomBytes(6).toString('hex')}`;
const url = databaseUrl(name);
const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
const before = mkdtempSync(join(tmpdir(), 'hookfleet-migrations-'));

beforeAll(async () => {
  await admin.unsafe(`create database "${name}"`);
  // The migrations as they were before this one: the same folder, its journal cut short.
  cpSync(MIGRATIONS_FOLDER, before, { recursive: true });
  const journalPath = join(before, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
  const cut = journal.entries.findIndex((entry) => entry.tag.endsWith('_endpoint_settings'));
  expect(cut).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, cut);
  writeFileSync(journalPath, JSON.stringify(journal));
});
afterAll(async () => {
  await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
  rmSync(before, { recursive: true, force: true });
});

describe('the endpoint_settings migration', () => {
  it('keeps existing endpoints and messages raw, and gives new endpoints the envelope', async () => {
    const client = createDbClient(url, { max: 1 });
    try {
      await migrate(client.db, { migrationsFolder: before });
      await client.sql`insert into endpoints (id, url, secret) values ('ep_old', 'http://127.0.0.1/', 'whsec_x')`;
      await client.sql`
        insert into messages (id, event_type, payload, body, endpoint_ids)
        values ('msg_old', 'old.event', '{}'::jsonb, '{}', '{ep_old}')`;
      await runMigrations(url);
      const [old] = await client.sql<{ payload_format: string; headers: unknown }[]>`
        select payload_format, headers from endpoints where id = 'ep_old'`;
      expect(old).toEqual({ payload_format: 'raw', headers: {} });
      const [message] = await client.sql<{ envelope: boolean }[]>`
        select envelope from messages where id = 'msg_old'`;
      expect(message!.envelope).toBe(false);
      const added = await insertEndpoint(client.db, { url: 'http://127.0.0.1/new' });
      expect(added.payloadFormat).toBe('envelope');
    } finally {
      await client.close();
    }
  });
});
