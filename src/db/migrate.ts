import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { createDbClient } from './client.js';

/** drizzle/ sits two levels above this file both in src/db and in dist/db. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

// Any fixed number; it only has to be the same in every hookfleet process.
const MIGRATION_LOCK_ID = 0x686f6f6b;

/**
 * Applies pending migrations. A session advisory lock, held on a connection of its own,
 * serialises processes that start together (`docker compose up --scale worker=4`), so each
 * migration runs exactly once.
 */
export async function runMigrations(databaseUrl: string): Promise<void> {
  const lock = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const client = createDbClient(databaseUrl, { max: 1 });
  try {
    await lock`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await migrate(client.db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.close();
    await lock.end({ timeout: 5 }); // ending the session releases the lock
  }
}
