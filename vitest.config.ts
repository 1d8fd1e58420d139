import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/globalSetup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Files run in parallel; each has its own database and queue prefix.
    pool: 'forks',
    // vitest's default is one worker less than the CPUs: on a 2-core CI machine, one, and the
    // files ran one after another (540 s, with the CPU busy for 250 s of it). Most of a file's
    // time is spent waiting on child processes, receivers, Redis and PostgreSQL, so two at once
    // nearly halves the wall time; the timing-sensitive tests measure slot-bound work.
    maxWorkers: 2,
  },
});
