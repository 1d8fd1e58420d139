import { describe, expect, it } from 'vitest';
import { isPostgresConnectionDebris } from '../../src/lifecycle.js';

function postgresError(code: string, frame: string): Error {
  const error = Object.assign(new Error('terminating connection due to administrator command'), {
    code,
  });
  error.name = 'PostgresError';
  error.stack = `PostgresError: ${error.message}\n    at ${frame}`;
  return error;
}

describe('isPostgresConnectionDebris', () => {
  it('accepts a session the server ended while postgres.js set up a connection', () => {
    const frame = 'ErrorResponse (file:///app/node_modules/postgres/src/connection.js:815:30)';
    expect(isPostgresConnectionDebris(postgresError('57P01', frame))).toBe(true);
    expect(isPostgresConnectionDebris(postgresError('57P03', frame))).toBe(true);
  });

  it('accepts socket errors of a dropped connection that reached a postgres.js query', () => {
    // As postgres.js 3.4.9's queryError() leaves them: a `query` property, the query's origin
    // appended to the stack.
    const reset = Object.assign(new Error('read ECONNRESET'), {
      code: 'ECONNRESET',
      syscall: 'read',
    });
    Object.defineProperty(reset, 'query', { value: 'select b.oid, b.typarray from pg_type' });
    expect(isPostgresConnectionDebris(reset)).toBe(true);
  });

  it('refuses the same socket errors from any other connection (an HTTP attempt, Redis)', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), {
      code: 'ECONNRESET',
      syscall: 'read',
    });
    reset.stack = `Error: read ECONNRESET\n    at TCP.onStreamRead (node:internal/stream_base_commons:216:20)`;
    expect(isPostgresConnectionDebris(reset)).toBe(false);
  });

  it("accepts CONNECTION_CLOSED from postgres.js's connection code (its unawaited type lookup)", () => {
    // As postgres.js 3.4.9 builds it (errors.js `connection`), from Socket.closed in connection.js.
    const closed = Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:34915'), {
      code: 'CONNECTION_CLOSED',
      errno: 'CONNECTION_CLOSED',
    });
    closed.stack = `Error: ${closed.message}\n    at Socket.closed (file:///app/node_modules/postgres/src/connection.js:453:57)`;
    expect(isPostgresConnectionDebris(closed)).toBe(true);
    const elsewhere = Object.assign(new Error('write CONNECTION_CLOSED'), {
      code: 'CONNECTION_CLOSED',
    });
    elsewhere.stack = `Error: ${elsewhere.message}\n    at run (file:///app/dist/worker/x.js:1:1)`;
    expect(isPostgresConnectionDebris(elsewhere)).toBe(false);
  });

  it('refuses anything else, so real bugs still stop the process', () => {
    expect(
      isPostgresConnectionDebris(postgresError('57P01', 'run (file:///app/dist/worker/x.js:1:1)')),
    ).toBe(false);
    expect(
      isPostgresConnectionDebris(
        postgresError(
          '23505',
          'ErrorResponse (file:///app/node_modules/postgres/src/connection.js:1:1)',
        ),
      ),
    ).toBe(false);
    expect(isPostgresConnectionDebris(new TypeError('x is undefined'))).toBe(false);
    expect(isPostgresConnectionDebris('not an error')).toBe(false);
  });
});
