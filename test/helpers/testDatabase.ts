import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { createDbClient, type DbClient } from '../../src/db/client.js';

/** The server the tests use; the machine's PostgreSQL by default. */
export const ADMIN_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

/** Migrated once per run by globalSetup (which names it); each test file copies it. */
function templateDatabase(): string {
  const name = process.env.HOOKFLEET_TEST_TEMPLATE;
  if (!name)
    throw new Error(
      'HOOKFLEET_TEST_TEMPLATE is unset: run the tests through vitest (globalSetup makes it)',
    );
  return name;
}

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface TestDatabase extends DbClient {
  name: string;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own for one test file, copied from the template (fast:
 * a file-level copy, no migrations to replay).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `hookfleet_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}" template "${templateDatabase()}"`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const client = createDbClient(url);
  return {
    ...client,
    url,
    name,
    async drop() {
      await client.close();
      const dropper = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await dropper.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
