import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Files that compare the throughput of two runs: they run last, one at a time, with no other
 * file of the suite beside them. Beside a file starting worker processes, the sick receivers'
 * ratio fell to 0.57 (bound 0.8) with no slot lost; alone it stayed at 0.9 or more.
 */
const ALONE = ['test/faults/sickReceivers.test.ts', 'test/integration/producer.ownerShare.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/globalSetup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Files run in parallel; each has its own database and queue prefix.
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ALONE],
          // vitest's default is one worker less than the CPUs: on a 2-core CI machine, one, and
          // the files ran one after another (540 s, with the CPU busy for 250 s of it). Most of a
          // file's time is spent waiting on child processes, receivers, Redis and PostgreSQL, so
          // two at once cut the wall time by a third.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
