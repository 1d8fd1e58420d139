/**
 * Hostile receivers beside a healthy one, end to end: a real worker delivers to real receivers on
 * 127.0.0.1 that answer 500 with NULs or invalid UTF-8 in the body, bytes that are not HTTP, a
 * reset, a header larger than the client accepts, control characters in the status line.
 *
 * Before: the NULs of one 500 body reached the recorder's batch, PostgreSQL refused it (SQLSTATE
 * 22021) and the recorder retried it forever; the healthy endpoint had 0 of 20 successes recorded
 * 30 s after they arrived. Checked here: every success of the healthy endpoint is recorded, and
 * every hostile attempt has an attempt row with a readable error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import type { EndpointRow } from '../../src/db/schema.js';
import type { RunningWorker } from '../../src/worker/startWorker.js';
import { allEnded, endpointRecords, FAULT_EVENT, sendMessages } from '../helpers/faultRig.js';
import {
  HOSTILE_ANSWERS,
  startRawReceiver,
  type HostileAnswerName,
  type RawReceiver,
} from '../helpers/hostileReceivers.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

const MESSAGES = 20;

/** What each hostile receiver's attempts must say (rows refused by the circuit say so instead). */
const EXPECTED: Record<HostileAnswerName, RegExp> = {
  nulBody: /^HTTP 500: error\uFFFD detail\uFFFD with NULs\uFFFD$/u,
  invalidUtf8Body: /^HTTP 500: bad\uFFFD+\(\uFFFD+$/u,
  hugeGarbageBody: /^HTTP 500: \uFFFD/u,
  notHttp: /does not match the HTTP\/1\.1 protocol/,
  reset: /ECONNRESET|other side closed/,
  oversizedHeader: /HEADERS_OVERFLOW/,
  controlCharsInStatusLine: /does not match the HTTP\/1\.1 protocol/,
};
/** Anything PostgreSQL's text type or a terminal would choke on. */
const UNSAFE = /[\p{Cc}\uD800-\uDFFF]/u;

let fleet: TestFleet;
let worker: RunningWorker;
let healthyReceiver: Receiver;
const hostileReceivers = new Map<HostileAnswerName, RawReceiver>();

beforeAll(async () => {
  fleet = await createTestFleet();
  healthyReceiver = await startReceiver();
  for (const name of Object.keys(HOSTILE_ANSWERS) as HostileAnswerName[])
    hostileReceivers.set(name, await startRawReceiver(HOSTILE_ANSWERS[name]));
  worker = fleet.startWorker();
});
afterAll(async () => {
  await fleet?.close();
  await healthyReceiver?.close();
  for (const receiver of hostileReceivers.values()) await receiver.close();
});

const endpointAt = (url: string): Promise<EndpointRow> =>
  insertEndpoint(fleet.db.db, { url, eventTypes: [FAULT_EVENT] });

describe('hostile receivers beside a healthy one', () => {
  it('leave every success of the healthy endpoint recorded, and each hostile attempt a readable error row', async () => {
    const healthy = await endpointAt(healthyReceiver.url);
    const hostile = new Map<string, HostileAnswerName>();
    for (const [name, receiver] of hostileReceivers)
      hostile.set((await endpointAt(receiver.url)).id, name);

    const jobIds = await sendMessages(fleet, MESSAGES, [healthy.id, ...hostile.keys()]);
    const ends = await allEnded(fleet, jobIds);
    await fleet.flushRecorders();
    expect(worker.recorder.pendingAttempts).toBe(0); // nothing left over to retry

    const isHealthy = (jobId: string) => jobId.split('.')[1] === healthy.id;
    expect(jobIds.filter(isHealthy)).toHaveLength(MESSAGES);
    expect(ends.filter((end, i) => isHealthy(jobIds[i]!) && end.state !== 'completed')).toEqual([]);
    const [record] = await endpointRecords(fleet, [healthy.id]);
    expect(record).toMatchObject({ successCount: MESSAGES, succeededAttempts: MESSAGES });
    expect(record!.lastSuccessAtMs).toBe(record!.newestSucceededAtMs);

    const rows = await fleet.db.sql<{ endpoint_id: string; error: string | null }[]>`
      select endpoint_id, error from attempts where endpoint_id <> ${healthy.id}`;
    const records = await endpointRecords(fleet, [...hostile.keys()]);
    for (const [endpointId, name] of hostile) {
      const errors = rows.filter((r) => r.endpoint_id === endpointId).map((r) => r.error ?? '');
      // One row per attempt made, none lost: the endpoint's failure counter agrees.
      expect(errors.length, name).toBeGreaterThanOrEqual(MESSAGES);
      expect(records.find((r) => r.id === endpointId)?.failureCount, name).toBe(errors.length);
      expect(
        errors.filter((e) => UNSAFE.test(e) || e === ''),
        name,
      ).toEqual([]);
      expect(errors.filter((e) => EXPECTED[name].test(e)).length, name).toBeGreaterThan(0);
      expect(
        errors.filter((e) => !EXPECTED[name].test(e) && !/^not sent: the endpoint circuit/.test(e)),
        name,
      ).toEqual([]);
    }
  }, 60_000);
});
