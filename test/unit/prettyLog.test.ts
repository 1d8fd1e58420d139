import { describe, expect, it } from 'vitest';
import { formatLogLine } from '../../src/prettyLog.js';

const line = (entry: Record<string, unknown>) =>
  JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), pid: 1, ...entry });

describe('formatLogLine', () => {
  it('shows time, level, message and the fields as key=value', () => {
    expect(formatLogLine(line({ msg: 'api listening', port: 3000, prefix: 'a b' }))).toBe(
      '03:04:05.006 INFO  api listening port=3000 prefix="a b"',
    );
  });

  it("shows a logged error's message, and its stack only when asked", () => {
    const entry = line({
      level: 50,
      msg: 'worker error',
      err: { message: 'connect ECONNREFUSED', code: 'ECONNREFUSED', stack: 'Error\n    at x' },
    });
    expect(formatLogLine(entry)).toBe('03:04:05.006 ERROR worker error err="connect ECONNREFUSED"');
    expect(formatLogLine(entry, true)).toContain('\n        at x');
  });

  it("adds an error's code when its message does not say it", () => {
    const entry = line({ msg: 'x', err: { message: 'socket hang up', code: 'ECONNRESET' } });
    expect(formatLogLine(entry)).toBe('03:04:05.006 INFO  x err="socket hang up (ECONNRESET)"');
  });

  it('passes a line that is not JSON through', () => {
    expect(formatLogLine('not json\n')).toBe('not json');
  });
});
