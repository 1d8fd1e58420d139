import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import type { DbClient } from './client.js';

/** drizzle/ sits two levels above this file both in src/db and in dist/db. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

// Any fixed number; it only has to be the same in every hookfleet process.
const MIGRATION_LOCK_ID = 0x686f6f6b;

/**
 * Applies pending migrations. An advisory lock serialises processes that start together
 * (`docker compose up --scale worker=4`), so each migration runs exactly once.
 */
export async function runMigrations(client: DbClient): Promise<void> {
  const reserved = await client.sql.reserve();
  try {
    await reserved`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    await migrate(client.db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await reserved`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`.catch(() => {});
    reserved.release();
  }
}
