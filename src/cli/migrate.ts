import { loadConfig } from '../config.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import { runMigrations } from '../db/migrate.js';
import { parseCommandArgs } from './args.js';

const HELP = `Usage: hookfleet migrate

Applies pending database migrations (drizzle/) and exits. Safe to run from several processes
at once: an advisory lock lets one apply them while the others wait.

Environment: DATABASE_URL (or the embedded PostgreSQL of 'hookfleet start'), HOOKFLEET_DATA_DIR`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('migrate', argv, {});
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig();
  await runMigrations(await resolveDatabaseUrl(config));
  console.log('hookfleet: database is up to date');
  return 0;
}
