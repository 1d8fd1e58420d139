import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { logRepeatedErrors } from '../../src/repeatedErrorLog.js';

describe('logRepeatedErrors', () => {
  it('logs the first of a run of the same error, then one line per interval with the count', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    let clockMs = 0;
    const onError = logRepeatedErrors(logger, 'warn', 'redis error', 30_000, () => clockMs);
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    for (let i = 0; i < 50; i++) onError(refused);
    clockMs = 30_000;
    onError(refused);
    onError(new Error('getaddrinfo ENOTFOUND redis'));
    expect(lines.map((line) => [line.msg, line.repeated])).toEqual([
      ['redis error', undefined],
      ['redis error', 49],
      ['redis error', undefined],
    ]);
  });
});
