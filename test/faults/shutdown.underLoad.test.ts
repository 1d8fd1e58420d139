/**
 * Issue #7, fault 4: every worker process gets SIGTERM while deliveries are in flight (receivers
 * answer after 200 ms). Checked here:
 * - each process exits with code 0 within HOOKFLEET_SHUTDOWN_TIMEOUT_MS, after finishing the
 *   deliveries it had started;
 * - no job is left active in Redis, and none was delivered twice;
 * - every success the processes recorded reached PostgreSQL (their recorders flush only every
 *   minute here, so all of it was in memory at the signal);
 * - the jobs not yet started stay queued (waiting, or delayed by an endpoint's in-flight limit),
 *   and a new process delivers them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeliveryLedger, type DeliveryLedger } from '../helpers/deliveryLedger.js';
import {
  addEndpoints,
  allEnded,
  endpointRecords,
  sendMessages,
  startWorkerProcesses,
  stopAll,
  workerEnv,
} from '../helpers/faultRig.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';
import type { WorkerProcess } from '../helpers/workerProcess.js';

const SHUTDOWN_TIMEOUT_MS = 5000;
/** Process start-up aside, what exiting may add to the bound (closing pools, flushing logs). */
const EXIT_SLACK_MS = 1000;

let fleet: TestFleet;
let ledger: DeliveryLedger;
const answer = { delayMs: 200 };
let processes: WorkerProcess[] = [];

beforeAll(async () => {
  fleet = await createTestFleet();
  ledger = await startDeliveryLedger(answer);
});
afterAll(async () => {
  await stopAll(processes, 'SIGKILL');
  await ledger?.close();
  await fleet?.close();
});

describe('SIGTERM to every worker process under load', () => {
  it('finishes what is in flight, records all of it, and leaves the rest queued', async () => {
    const endpoints = await addEndpoints(fleet, 10, ledger.url);
    const endpointIds = endpoints.map((e) => e.id);
    processes = await startWorkerProcesses(
      3,
      workerEnv(fleet, {
        HOOKFLEET_CONCURRENCY: '10',
        HOOKFLEET_RECORDER_FLUSH_MS: '60000',
        HOOKFLEET_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        HOOKFLEET_DELIVERY_TIMEOUT_MS: '10000',
      }),
    );
    const jobIds = await sendMessages(fleet, 60, endpointIds);
    await ledger.waitForUnique(60);

    const stops = await stopAll(processes);
    processes = [];
    for (const { code, ms } of stops) {
      expect(code).toBe(0);
      expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_SLACK_MS);
    }
    const queue = fleet.producer.deliveriesQueue;
    const messages = fleet.producer.messagesQueue;
    expect((await queue.getJobCounts('active')).active).toBe(0);
    expect((await messages.getJobCounts('active')).active).toBe(0);
    const received = ledger.total;
    expect(received).toBeLessThan(jobIds.length);
    expect(ledger.unique).toBe(received);

    // Everything received was answered 204 and recorded before the processes exited.
    const records = await endpointRecords(fleet, endpointIds);
    expect(records.reduce((n, r) => n + r.successCount, 0)).toBe(received);
    for (const record of records) {
      expect(record.successCount).toBe(record.succeededAttempts);
      expect(record.lastSuccessAtMs).toBe(record.newestSucceededAtMs);
    }
    expect((await queue.getJobCounts('failed')).failed).toBe(0);
    // Fan-outs cut short by the stop went back to the queue, to resume where they stopped.
    const fanOuts = await messages.getJobCounts('wait', 'delayed', 'failed');
    expect(fanOuts.failed).toBe(0);
    expect((fanOuts.wait ?? 0) + (fanOuts.delayed ?? 0)).toBeGreaterThan(0);

    // Nothing was lost: a new process delivers the rest, each delivery once (a resumed fan-out
    // skips what the stopped one finished).
    answer.delayMs = 0;
    processes = await startWorkerProcesses(1, workerEnv(fleet, { HOOKFLEET_CONCURRENCY: '20' }));
    const ends = await allEnded(fleet, jobIds);
    expect(ends.filter((end) => end.state !== 'completed')).toEqual([]);
    expect(ledger.unique).toBe(jobIds.length);
    expect(ledger.total).toBe(jobIds.length);
  }, 60_000);
});
