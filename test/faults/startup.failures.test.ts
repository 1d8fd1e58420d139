/**
 * A first run where something is missing: each of `start`, `api` and `worker` prints one line on
 * stderr naming what is wrong and what to set, exits 1 within 10 s, and prints no stack trace.
 * Dependencies are taken away the simple way: a port where nothing listens (Redis, PostgreSQL),
 * a port held by a server of the test's own (API, embedded PostgreSQL), a data directory under a
 * regular file (root may write anywhere, but not there).
 */
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/freePort.js';
import { spawnHookfleet } from '../helpers/hookfleetProcess.js';
import { ADMIN_DATABASE_URL } from '../helpers/testDatabase.js';
import { TEST_REDIS_URL, testQueuePrefix } from '../helpers/testRedis.js';

const LIMIT_MS = 10_000;
let dir: string;
let prefix: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hookfleet-startup-'));
  await chmod(dir, 0o755);
  prefix = testQueuePrefix();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function holdPort(port: number, host?: string): Promise<Server> {
  const server = createServer();
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

/** Runs `hookfleet <command>` to its exit; expects the one-line failure described above. */
async function expectOneLineFailure(
  command: string,
  env: Record<string, string>,
  message: RegExp,
): Promise<void> {
  const startedAt = performance.now();
  const run = spawnHookfleet([command], {
    HOOKFLEET_QUEUE_PREFIX: prefix,
    PORT: String(await freePort()),
    ...env,
  });
  const timer = setTimeout(() => void run.kill(), LIMIT_MS + 5000);
  const { code, atMs } = await run.exited;
  clearTimeout(timer);
  const output = [...run.stdout, ...run.stderr].join('\n');
  expect(run.stderr, output).toHaveLength(1);
  expect(run.stderr[0]).toMatch(message);
  expect(code, output).toBe(1);
  expect(atMs - startedAt).toBeLessThan(LIMIT_MS);
  expect(output).not.toMatch(/^\s+at /m);
}

describe.each(['start', 'api', 'worker'])('hookfleet %s', (command) => {
  it('says Redis is not answering and how to fix it when REDIS_URL points at nothing', async () => {
    const redisUrl = `redis://127.0.0.1:${await freePort()}`;
    await expectOneLineFailure(
      command,
      { REDIS_URL: redisUrl, DATABASE_URL: ADMIN_DATABASE_URL },
      new RegExp(
        `^hookfleet: Redis at ${redisUrl} is not answering \\(ECONNREFUSED\\)\\. Start Redis, or set REDIS_URL`,
      ),
    );
  });

  it('says PostgreSQL is not answering and how to fix it when DATABASE_URL points at nothing', async () => {
    const port = await freePort();
    await expectOneLineFailure(
      command,
      { REDIS_URL: TEST_REDIS_URL, DATABASE_URL: `postgres://hookfleet:pw@127.0.0.1:${port}/db` },
      new RegExp(
        `^hookfleet: PostgreSQL at postgres://hookfleet:\\*\\*\\*@127\\.0\\.0\\.1:${port}/db is not answering \\(ECONNREFUSED\\)\\. Start PostgreSQL, or set DATABASE_URL`,
      ),
    );
  });
});

describe.each(['start', 'api'])('hookfleet %s', (command) => {
  it('says the API port is taken and names PORT', async () => {
    const port = await freePort();
    const holder = await holdPort(port);
    try {
      await expectOneLineFailure(
        command,
        { REDIS_URL: TEST_REDIS_URL, DATABASE_URL: ADMIN_DATABASE_URL, PORT: String(port) },
        new RegExp(
          `^hookfleet: port ${port} for the API is not available \\(EADDRINUSE\\)\\. .*set PORT to a free port`,
        ),
      );
    } finally {
      holder.close();
    }
  });
});

describe('hookfleet start with the embedded PostgreSQL', () => {
  it("says the embedded PostgreSQL's port is taken and how to choose another", async () => {
    const port = await freePort();
    const holder = await holdPort(port, '127.0.0.1');
    try {
      await expectOneLineFailure(
        'start',
        {
          REDIS_URL: TEST_REDIS_URL,
          HOOKFLEET_DATA_DIR: join(dir, 'taken'),
          HOOKFLEET_EMBEDDED_PG_PORT: String(port),
        },
        new RegExp(
          `^hookfleet: port ${port} of the embedded PostgreSQL is taken by another program \\(EADDRINUSE\\)\\. .*HOOKFLEET_EMBEDDED_PG_PORT`,
        ),
      );
    } finally {
      holder.close();
    }
  });

  it('says the data directory is not writable and names HOOKFLEET_DATA_DIR', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, '');
    await expectOneLineFailure(
      'start',
      {
        REDIS_URL: TEST_REDIS_URL,
        HOOKFLEET_DATA_DIR: join(file, 'data'),
        HOOKFLEET_EMBEDDED_PG_PORT: String(await freePort()),
      },
      new RegExp(
        `^hookfleet: data directory ${join(file, 'data')} is not writable \\(ENOTDIR\\)\\. Set HOOKFLEET_DATA_DIR`,
      ),
    );
  });
});

describe('--verbose', () => {
  it('adds the stack trace after the one line', async () => {
    const redisUrl = `redis://127.0.0.1:${await freePort()}`;
    const run = spawnHookfleet(['worker', '--verbose'], {
      REDIS_URL: redisUrl,
      DATABASE_URL: ADMIN_DATABASE_URL,
      HOOKFLEET_QUEUE_PREFIX: prefix,
    });
    expect((await run.exited).code).toBe(1);
    expect(run.stderr[0]).toMatch(/^hookfleet: Redis at .* is not answering/);
    expect(run.stderr.slice(1).join('\n')).toMatch(/^\s+at .*startupChecks/m);
  });
});
