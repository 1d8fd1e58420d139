/**
 * Issue #7, found by the PostgreSQL outage test: a connection that drops after the recorder's
 * statement committed but before its answer arrived made the recorder write the batch again,
 * doubling success_count and the attempt rows. The recorder now checks such a batch before writing
 * it again. Here the lost answer is made deterministic by wrapping the postgres.js client.
 */
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { createLogger } from '../../src/logger.js';
import { SuccessRecorder, type AttemptRecord } from '../../src/worker/successRecorder.js';
import { endpointRecords } from '../helpers/faultRig.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
const logger = createLogger({ logLevel: 'silent' });

beforeAll(async () => {
  fleet = await createTestFleet();
});
afterAll(async () => {
  await fleet?.close();
});

/** What a dropped connection looks like to postgres.js callers. */
function connectionReset(): Error {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
}

/**
 * The real client, except that the next write of the recorder fails as a dropped connection
 * would: 'after-commit' runs it and then loses the answer, 'before-send' never runs it.
 */
function flakyClient(real: postgres.Sql) {
  let next: 'after-commit' | 'before-send' | undefined;
  const sql = ((strings: TemplateStringsArray, ...args: never[]) => {
    const failure = strings.join('?').includes('insert into attempts') ? next : undefined;
    if (failure === undefined) return real(strings, ...args);
    next = undefined;
    if (failure === 'before-send') return Promise.reject(connectionReset());
    return real(strings, ...args).then(() => {
      throw connectionReset();
    });
  }) as unknown as postgres.Sql;
  Object.assign(sql, { array: real.array.bind(real) });
  return { sql, failNext: (how: 'after-commit' | 'before-send') => (next = how) };
}

function success(endpointId: string, n: number): AttemptRecord {
  return {
    messageId: `msg_lost_${n}`,
    endpointId,
    attemptNumber: 1,
    attemptedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)),
    outcome: 'succeeded',
    statusCode: 204,
    durationMs: 5,
  };
}

describe('the success recorder when a connection drops around its write', () => {
  it.each(['after-commit', 'before-send'] as const)(
    'writes each success exactly once when the write fails %s',
    async (how) => {
      const endpoint = await insertEndpoint(fleet.db.db, { url: 'http://127.0.0.1:9/' });
      const client = flakyClient(fleet.db.sql);
      const recorder = new SuccessRecorder({ sql: client.sql, logger, flushMs: 60_000 });
      try {
        client.failNext(how);
        for (let n = 0; n < 3; n++) recorder.record(success(endpoint.id, n));
        await recorder.flush();
        expect(recorder.pendingAttempts).toBe(3);

        recorder.record(success(endpoint.id, 3));
        await recorder.flush();
        expect(recorder.pendingAttempts).toBe(0);
        const [record] = await endpointRecords(fleet, [endpoint.id]);
        expect(record).toMatchObject({ successCount: 4, succeededAttempts: 4 });
        expect(record!.lastSuccessAtMs).toBe(Date.UTC(2026, 0, 1, 0, 0, 3));
      } finally {
        await recorder.close();
      }
    },
  );
});
