import { describe, expect, it } from 'vitest';
import { createProgressReporter, formatResult } from '../../src/cli/sweep.js';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import type { SweepResult } from '../../src/worker/staleSweep.js';

function fakeStream(isTTY: boolean) {
  const written: string[] = [];
  const stream = {
    isTTY,
    write: (chunk: string) => written.push(chunk) > 0,
  } as unknown as NodeJS.WriteStream;
  return { stream, written };
}

const result: SweepResult = {
  dryRun: true,
  now: new Date('2026-01-01T00:00:00Z'),
  deactivated: 3,
  probed: 0,
  warned: 1,
  failingDisabled: 4,
  failingWarned: 5,
  attemptsPruned: 10,
  messagesPruned: 2,
  sample: [
    {
      id: 'ep_1',
      url: 'https://a.example/hook',
      lastSuccessAt: new Date('2024-06-01T00:00:00Z'),
      staleAfterDays: 365,
    },
    { id: 'ep_2', url: 'https://b.example/h', lastSuccessAt: null, staleAfterDays: 30 },
  ],
  eventsFailed: 0,
  durationMs: { total: 1234, deactivate: 0, probe: 0, warn: 0, failing: 0, prune: 0 },
  statements: 4,
  longestStatementMs: 12.3,
};

describe('sweep progress', () => {
  it('redraws one bar with \\r on a terminal, and clears it', () => {
    const { stream, written } = fakeStream(true);
    const progress = createProgressReporter(stream, 100);
    progress.update(500, 1000, 'deactivate');
    progress.update(1000, 1000, 'deactivate');
    progress.clear();
    expect(written[0]).toMatch(/^\r\[#{15}-{15}\] 50% deactivating 500\/1000/);
    expect(written[1]).toMatch(/^\r\[#{30}\] 100%/);
    expect(written[2]).toBe('\r\x1b[K');
  });

  it('writes an occasional plain line when stderr is not a terminal', () => {
    const { stream, written } = fakeStream(false);
    let nowMs = 10_000;
    const progress = createProgressReporter(stream, 100, () => nowMs);
    progress.update(100, 1000, 'prune');
    progress.update(200, 1000, 'prune');
    nowMs += 5000;
    progress.update(300, 1000, 'prune');
    progress.update(1000, 1000, 'prune');
    expect(written).toEqual([
      'hookfleet sweep: pruning attempts 100/1000 (10%)\n',
      'hookfleet sweep: pruning attempts 300/1000 (30%)\n',
      'hookfleet sweep: pruning attempts 1000/1000 (100%)\n',
    ]);
  });

  it('stays quiet for work of one batch or less', () => {
    const { stream, written } = fakeStream(true);
    createProgressReporter(stream, 5000).update(10, 4000, 'deactivate');
    expect(written).toEqual([]);
  });
});

describe('sweep report', () => {
  it('shows a dry run as a count and a sample table', () => {
    const text = formatResult(result, 365);
    expect(text).toContain('3 endpoints would be deactivated');
    expect(text).toMatch(/^ID +URL +LAST SUCCESS +STALE AFTER DAYS$/m);
    expect(text).toContain('ep_2  https://b.example/h     never');
    expect(text).toContain('… and 1 more');
    expect(text).toContain('4 failing endpoints would be disabled and 5 warned');
  });
});

describe('sweep configuration', () => {
  const base = { DATABASE_URL: 'postgres://x@localhost/db' };

  it('has the documented defaults', () => {
    expect(loadConfig(base)).toMatchObject({
      failingDisableAfterHours: 120,
      staleAfterDays: 365,
      staleWarningDays: 30,
      sweepCron: '0 3 * * *',
      sweepTz: 'UTC',
      attemptRetentionDays: 30,
      operatorWebhookSecret: undefined,
    });
  });

  it.each([
    ['HOOKFLEET_SWEEP_CRON', 'every day'],
    ['HOOKFLEET_SWEEP_TZ', 'Mars/Olympus'],
    ['HOOKFLEET_OPERATOR_WEBHOOK_SECRET', 'hunter2'],
    ['HOOKFLEET_ATTEMPT_RETENTION_DAYS', '0'],
    ['HOOKFLEET_STALE_WARNING_DAYS', '-1'],
  ])('refuses a bad %s, naming it', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(new RegExp(name));
  });

  it('never echoes the operator secret back', () => {
    expect(() => loadConfig({ ...base, HOOKFLEET_OPERATOR_WEBHOOK_SECRET: 'whsec_short' })).toThrow(
      /<redacted>/,
    );
  });

  it('refuses a warning window as long as the threshold', () => {
    expect(() =>
      loadConfig({ ...base, HOOKFLEET_STALE_AFTER_DAYS: '30', HOOKFLEET_STALE_WARNING_DAYS: '30' }),
    ).toThrow(ConfigError);
  });
});
