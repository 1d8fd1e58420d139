import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from '../../src/db/migrate.js';

const run = promisify(execFile);

describe('drizzle/ migrations', () => {
  it('agree with src/db/schema.ts: generating again on a copy finds nothing to add', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'hookfleet-drizzle-'));
    try {
      await cp(MIGRATIONS_FOLDER, copy, { recursive: true });
      const before = await readdir(copy);
      const root = path.resolve(MIGRATIONS_FOLDER, '..');
      // drizzle-kit prefixes --out with './', so it has to be relative to the project.
      const { stdout } = await run(
        'npx',
        [
          'drizzle-kit',
          'generate',
          '--dialect',
          'postgresql',
          '--schema',
          './src/db/schema.ts',
          '--out',
          path.relative(root, copy),
        ],
        { cwd: root },
      );
      expect(stdout).toContain('No schema changes');
      expect(await readdir(copy)).toEqual(before);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  }, 60_000);
});
