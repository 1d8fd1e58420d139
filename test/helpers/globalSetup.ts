import postgres from 'postgres';
import { runMigrations } from '../../src/db/migrate.js';
import { ADMIN_DATABASE_URL, databaseUrl } from './testDatabase.js';

/**
 * Builds the migrated template database every test file copies. Its name is this run's own, so
 * two test runs on one machine (a developer and CI, say) do not drop each other's template.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const template = `hookfleet_test_template_${process.pid}`;
  const admin = () => postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
  const sql = admin();
  try {
    await sql.unsafe(`drop database if exists "${template}" with (force)`);
    await sql.unsafe(`create database "${template}"`);
  } finally {
    await sql.end();
  }
  await runMigrations(databaseUrl(template));
  // Test workers are forked after this runs, so they inherit it.
  process.env.HOOKFLEET_TEST_TEMPLATE = template;
  return async () => {
    const dropper = admin();
    try {
      await dropper.unsafe(`drop database if exists "${template}" with (force)`);
    } finally {
      await dropper.end();
    }
  };
}
