import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/sweep.js';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { HookfleetError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { deleteQueueKeys, TEST_REDIS_URL, testQueuePrefix } from '../helpers/testRedis.js';

// `hookfleet sweep` reads its settings from process.env (through loadConfig); this file runs in a
// process of its own, and puts the variables back when it is done.
let db: TestDatabase;
const savedEnv = { ...process.env };
// A sweep that changes things opens the `messages` queue (pings, operational events): this file's own.
const prefix = testQueuePrefix();

beforeAll(async () => {
  db = await createTestDatabase();
  process.env.DATABASE_URL = db.url;
  process.env.LOG_LEVEL = 'silent';
  process.env.REDIS_URL = TEST_REDIS_URL;
  process.env.HOOKFLEET_QUEUE_PREFIX = prefix;
  delete process.env.HOOKFLEET_OPERATOR_WEBHOOK_URL;
});
afterAll(async () => {
  process.env = savedEnv;
  await deleteQueueKeys(prefix);
  await db.drop();
});
afterEach(() => {
  vi.restoreAllMocks();
});

function captureStdout() {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  return () => log.mock.calls.map((args) => args.join(' ')).join('\n');
}

/** A stale endpoint whose deliveries failed in its stale window: deactivated without a probe. */
async function staleEndpoint(): Promise<string> {
  const { id } = await insertEndpoint(db.db, { url: 'https://receiver.example/stale' });
  await db.sql`update endpoints set created_at = now() - interval '400 days',
    last_failure_at = now() - interval '10 days' where id = ${id}`;
  return id;
}

/** A stale endpoint that got no deliveries at all: probed before it is deactivated. */
async function idleEndpoint(): Promise<string> {
  const { id } = await insertEndpoint(db.db, { url: 'https://receiver.example/idle' });
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
    const idle = await idleEndpoint();
    const output = captureStdout();

    expect(await run(['--dry-run', '--json'])).toBe(0);

    const result = JSON.parse(output()) as {
      dryRun: boolean;
      deactivated: number;
      probed: number;
      sample: { id: string }[];
    };
    expect(result).toMatchObject({ dryRun: true, deactivated: 1, probed: 1 });
    expect(result.sample.map((row) => row.id)).toEqual([id]);
    expect((await findEndpoint(db.db, id))!.active).toBe(true);
    expect((await findEndpoint(db.db, idle))!.staleProbedAt).toBeNull();
  });

  it('--dry-run prints the count and a sample table', async () => {
    const output = captureStdout();
    expect(await run(['--dry-run'])).toBe(0);
    expect(output()).toMatch(/1 endpoints would be deactivated/);
    expect(output()).toMatch(/1 idle ones probed first/);
    expect(output()).toMatch(/ID\s+URL\s+LAST SUCCESS/);
    expect(output()).toContain('https://receiver.example/stale');
  });

  it('deactivates stale endpoints and says how many', async () => {
    await db.sql`truncate endpoints`;
    const id = await staleEndpoint();
    const idle = await idleEndpoint();
    const output = captureStdout();

    expect(await run([])).toBe(0);

    expect(output()).toMatch(/^Deactivated 1 stale endpoints, probed 1 idle ones/);
    expect((await findEndpoint(db.db, id))!.active).toBe(false);
    const probed = (await findEndpoint(db.db, idle))!;
    expect(probed.active).toBe(true);
    expect(probed.staleProbedAt).toBeInstanceOf(Date);
  });
});
