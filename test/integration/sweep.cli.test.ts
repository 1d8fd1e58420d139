import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/sweep.js';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { HookfleetError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';

// `hookfleet sweep` reads its settings from process.env (through loadConfig); this file runs in a
// process of its own, and puts the variables back when it is done.
let db: TestDatabase;
const savedEnv = { ...process.env };

beforeAll(async () => {
  db = await createTestDatabase();
  process.env.DATABASE_URL = db.url;
  process.env.LOG_LEVEL = 'silent';
  delete process.env.HOOKFLEET_OPERATOR_WEBHOOK_URL;
});
afterAll(async () => {
  process.env = savedEnv;
  await db.drop();
});
afterEach(() => {
  vi.restoreAllMocks();
});

function captureStdout() {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  return () => log.mock.calls.map((args) => args.join(' ')).join('\n');
}

async function staleEndpoint(): Promise<string> {
  const { id } = await insertEndpoint(db.db, { url: 'https://receiver.example/stale' });
  await db.sql`update endpoints set created_at = now() - interval '400 days' where id = ${id}`;
  return id;
}

describe('hookfleet sweep', () => {
  it('--help lists the flags and the environment variables it reads', async () => {
    const output = captureStdout();
    expect(await run(['--help'])).toBe(0);
    for (const word of [
      '--dry-run',
      '--json',
      'DATABASE_URL',
      'HOOKFLEET_STALE_AFTER_DAYS',
      'HOOKFLEET_OPERATOR_WEBHOOK_URL',
    ]) {
      expect(output()).toContain(word);
    }
  });

  it('refuses an unknown flag with a one-line error', async () => {
    await expect(run(['--force'])).rejects.toThrow(HookfleetError);
  });

  it('without DATABASE_URL fails with a one-line error naming it', async () => {
    const url = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    process.env.HOOKFLEET_DATA_DIR = '/nonexistent/hookfleet-test';
    try {
      const error: unknown = await run([]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HookfleetError);
      expect((error as HookfleetError).message).toMatch(/DATABASE_URL/);
      expect((error as HookfleetError).message).not.toContain('\n');
    } finally {
      process.env.DATABASE_URL = url;
      delete process.env.HOOKFLEET_DATA_DIR;
    }
  });

  it('--dry-run --json reports what would change and changes nothing', async () => {
    const id = await staleEndpoint();
    const output = captureStdout();

    expect(await run(['--dry-run', '--json'])).toBe(0);

    const result = JSON.parse(output()) as {
      dryRun: boolean;
      deactivated: number;
      sample: { id: string }[];
    };
    expect(result).toMatchObject({ dryRun: true, deactivated: 1 });
    expect(result.sample.map((row) => row.id)).toEqual([id]);
    expect((await findEndpoint(db.db, id))!.active).toBe(true);
  });

  it('--dry-run prints the count and a sample table', async () => {
    const output = captureStdout();
    expect(await run(['--dry-run'])).toBe(0);
    expect(output()).toMatch(/would be deactivated/);
    expect(output()).toMatch(/ID\s+URL\s+LAST SUCCESS/);
    expect(output()).toContain('https://receiver.example/stale');
  });

  it('deactivates stale endpoints and says how many', async () => {
    await db.sql`truncate endpoints`;
    const id = await staleEndpoint();
    const output = captureStdout();

    expect(await run([])).toBe(0);

    expect(output()).toMatch(/^Deactivated 1 stale endpoints/);
    expect((await findEndpoint(db.db, id))!.active).toBe(false);
  });
});
