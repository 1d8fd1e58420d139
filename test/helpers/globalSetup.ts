import postgres from 'postgres';
import { createDbClient } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import { ADMIN_DATABASE_URL, TEMPLATE_DATABASE, databaseUrl } from './testDatabase.js';

/** Builds the migrated template database every test file copies. */
export default async function setup(): Promise<void> {
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists "${TEMPLATE_DATABASE}" with (force)`);
    await admin.unsafe(`create database "${TEMPLATE_DATABASE}"`);
  } finally {
    await admin.end();
  }
  const client = createDbClient(databaseUrl(TEMPLATE_DATABASE), { max: 1 });
  try {
    await runMigrations(client);
  } finally {
    await client.close();
  }
}
