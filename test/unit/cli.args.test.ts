import { describe, expect, it } from 'vitest';
import { parseSince, parseWholeNumber } from '../../src/cli/args.js';
import { EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_USAGE, exitCodeFor } from '../../src/cli/exitCodes.js';
import { createProgressBar } from '../../src/cli/progress.js';
import { ConfigError, HookfleetError } from '../../src/errors.js';

const now = new Date('2026-03-10T12:00:00Z');

describe('parseSince', () => {
  it.each([
    ['30m', '2026-03-10T11:30:00.000Z'],
    ['2h', '2026-03-10T10:00:00.000Z'],
    ['3d', '2026-03-07T12:00:00.000Z'],
    ['1.5h', '2026-03-10T10:30:00.000Z'],
    ['2026-03-01', '2026-03-01T00:00:00.000Z'],
    ['2026-03-01T08:15:00Z', '2026-03-01T08:15:00.000Z'],
    ['2026-03-01T08:15:00.250+02:00', '2026-03-01T06:15:00.250Z'],
    ['2026-03-01 08:15Z', '2026-03-01T08:15:00.000Z'],
  ])('reads %s', (text, expected) => {
    expect(parseSince('failed list', text, now).toISOString()).toBe(expected);
  });

  it.each(['', 'yesterday', '5', '2h ago', '-2h', '2026-03-01T08:15:00', '2026-13-45', 'P1D'])(
    'refuses %j with a usage error naming the accepted forms',
    (text) => {
      expect(() => parseSince('failed list', text, now)).toThrow(
        /^failed list: --since takes an age such as 30m, 2h or 3d, or an ISO 8601 time with a zone/,
      );
    },
  );

  it('refuses a time in the future', () => {
    expect(() => parseSince('failed replay', '2026-03-11', now)).toThrow(
      "failed replay: --since 2026-03-11 is in the future (see 'hookfleet failed --help')",
    );
  });
});

describe('parseWholeNumber', () => {
  it('reads a whole number within bounds and refuses anything else', () => {
    expect(parseWholeNumber('failed list', '--limit', '10', 1, 100)).toBe(10);
    for (const text of ['0', '101', '1.5', '-1', 'ten', ''])
      expect(() => parseWholeNumber('failed list', '--limit', text, 1, 100)).toThrow(
        /--limit takes a whole number from 1 to 100/,
      );
  });
});

describe('exitCodeFor', () => {
  it('maps not found to 3, bad arguments and invalid input to 2, everything else to 1', () => {
    expect(exitCodeFor(new HookfleetError('not_found', 'x', 404))).toBe(EXIT_NOT_FOUND);
    expect(exitCodeFor(new HookfleetError('bad_arguments', 'x'))).toBe(EXIT_USAGE);
    expect(exitCodeFor(new HookfleetError('validation_failed', 'x', 422))).toBe(EXIT_USAGE);
    expect(exitCodeFor(new HookfleetError('payload_too_large', 'x', 413))).toBe(EXIT_USAGE);
    expect(exitCodeFor(new HookfleetError('redis_unavailable', 'x', 503))).toBe(EXIT_FAILURE);
    expect(exitCodeFor(new HookfleetError('endpoint_inactive', 'x', 409))).toBe(EXIT_FAILURE);
    expect(exitCodeFor(new HookfleetError('config_missing', 'x'))).toBe(EXIT_FAILURE);
    expect(exitCodeFor(new ConfigError('x'))).toBe(EXIT_FAILURE);
    expect(exitCodeFor(new Error('boom'))).toBe(EXIT_FAILURE);
  });
});

describe('createProgressBar', () => {
  function fakeStream(isTTY: boolean) {
    const written: string[] = [];
    const stream = {
      isTTY,
      write: (chunk: string) => written.push(chunk) > 0,
    } as unknown as NodeJS.WriteStream;
    return { stream, written };
  }

  it('redraws one bar in place on a terminal and erases it', () => {
    const { stream, written } = fakeStream(true);
    const bar = createProgressBar(stream);
    bar.draw(0, 4, 'replayed 0/4');
    bar.draw(1, 4, 'replayed 1/4');
    bar.draw(4, 4, 'replayed 4/4');
    bar.clear();
    bar.clear();
    expect(written).toEqual([
      `\r[${'-'.repeat(30)}] 0% replayed 0/4\x1b[K`,
      `\r[${'#'.repeat(8)}${'-'.repeat(22)}] 25% replayed 1/4\x1b[K`,
      `\r[${'#'.repeat(30)}] 100% replayed 4/4\x1b[K`,
      '\r\x1b[K',
    ]);
  });

  it('writes plain lines elsewhere, at most one per interval and always the last', () => {
    const { stream, written } = fakeStream(false);
    let nowMs = 1000;
    const bar = createProgressBar(stream, { lineIntervalMs: 2000, nowMs: () => nowMs });
    bar.draw(100, 500, 'replayed 100/500');
    bar.draw(200, 500, 'replayed 200/500');
    nowMs += 2000;
    bar.draw(300, 500, 'replayed 300/500');
    bar.draw(500, 500, 'replayed 500/500');
    bar.clear();
    expect(written).toEqual(['replayed 100/500\n', 'replayed 300/500\n', 'replayed 500/500\n']);
  });
});
