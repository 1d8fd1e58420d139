import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Config } from '../../src/config.js';
import { createTestFleet, type TestFleet } from './testFleet.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `hookfleet` CLI (through tsx) in a child process against a test fleet's database
 * and queue prefix; `env` adds or overrides variables.
 */
export function runHookfleet(
  config: Config,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      {
        env: {
          ...process.env,
          DATABASE_URL: config.databaseUrl,
          REDIS_URL: config.redisUrl,
          HOOKFLEET_QUEUE_PREFIX: config.queuePrefix,
          HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
          LOG_LEVEL: 'silent',
          ...env,
        },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A failed run as scripts expect it: exit `code`, one line on stderr matching `message`, no stdout. */
export function expectOneLineError(result: CliRun, code: number, message: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stdout).toBe('');
}

/**
 * A test fleet for the calling test file (its own database and queue prefix), opened before its
 * tests and closed after them, and `hookfleet`, which runs the real CLI against it.
 */
export function useCliFleet(): {
  fleet: () => TestFleet;
  hookfleet: (...args: string[]) => Promise<CliRun>;
} {
  let fleet: TestFleet | undefined;
  beforeAll(async () => {
    fleet = await createTestFleet();
  });
  afterAll(async () => {
    await fleet?.close();
  });
  const opened = () => {
    if (fleet === undefined) throw new Error('useCliFleet: the fleet opens in beforeAll');
    return fleet;
  };
  return { fleet: opened, hookfleet: (...args) => runHookfleet(opened().config, args) };
}
