/**
 * Issue #7, fault 2: the workers lose PostgreSQL mid-run. They reach it through a TCP proxy that
 * is cut for 3 s; later their connections are also killed with pg_terminate_backend. Checked here:
 * - fan-outs that had read their message go on delivering to the endpoints the workers have
 *   cached during the outage; fan-outs that cannot read their message (the body and endpoint set
 *   are in PostgreSQL) are postponed, and so is a delivery whose endpoint is not cached: not
 *   failed, no failed attempt is
 *   recorded against the endpoint and it does not use up a step of the retry schedule (its
 *   eventual success is attempt 1);
 * - the successes recorded during the outage are kept and written once PostgreSQL is back, so the
 *   attempt history and counters match what the receivers got, one row per request;
 * - `last_success_at` never moves backwards (sampled throughout) and ends equal to the newest
 *   succeeded attempt of each endpoint;
 * - no worker dies of the dropped connections (postgres.js 3.4.9 leaks errors then, see lifecycle.ts).
 * Postponed deliveries wait for the workers' connection pool to recover: postgres.js reconnects
 * with a backoff shared by the pool that reaches 10-20 s after many failed connections, which is
 * most of this test's duration.
 */
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MESSAGES_QUEUE } from '../../src/jobs.js';
import { ADMIN_DATABASE_URL } from '../helpers/testDatabase.js';
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
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';
import type { WorkerProcess } from '../helpers/workerProcess.js';

const APP_NAME = 'hookfleet-fault-worker';
const CUT_MS = 3000;

let fleet: TestFleet;
let proxy: TcpProxy;
let ledger: DeliveryLedger;
let processes: WorkerProcess[] = [];
let sampling: NodeJS.Timeout | undefined;
let fanOutEvents: QueueEvents;

beforeAll(async () => {
  fleet = await createTestFleet();
  fanOutEvents = new QueueEvents(MESSAGES_QUEUE, {
    connection: { url: fleet.config.redisUrl },
    prefix: fleet.config.queuePrefix,
  });
  await fanOutEvents.waitUntilReady();
  proxy = await startTcpProxy(Number(new URL(ADMIN_DATABASE_URL).port || 5432));
  ledger = await startDeliveryLedger({ delayMs: 20 });
});
afterAll(async () => {
  clearInterval(sampling);
  await stopAll(processes, 'SIGKILL');
  await fanOutEvents?.close();
  await ledger?.close();
  await proxy?.close();
  await fleet?.close();
});

/** The test database's URL, through the proxy, with an application_name to find the workers' sessions by. */
function proxiedDatabaseUrl(): string {
  const url = new URL(proxy.through(fleet.config.databaseUrl!));
  url.searchParams.set('application_name', APP_NAME);
  return url.toString();
}

/** Reads every endpoint's last_success_at every 50 ms; records any that moved backwards. */
function watchLastSuccess(ids: string[]): { backwards: string[] } {
  const seen = new Map<string, number>();
  const backwards: string[] = [];
  let reading = false;
  sampling = setInterval(() => {
    if (reading) return;
    reading = true;
    void fleet.db.sql<{ id: string; at: Date | null }[]>`
      select id, last_success_at as at from endpoints where id = any(${fleet.db.sql.array(ids)}::text[])`
      .then((rows) => {
        for (const { id, at } of rows) {
          if (at === null) continue;
          const ms = new Date(at).getTime();
          if (ms < (seen.get(id) ?? 0))
            backwards.push(
              `${id}: ${new Date(seen.get(id)!).toISOString()} -> ${new Date(ms).toISOString()}`,
            );
          seen.set(id, ms);
        }
      })
      .finally(() => {
        reading = false;
      });
  }, 50);
  return { backwards };
}

describe('PostgreSQL unreachable from the workers', () => {
  it('keeps delivering cached endpoints, postpones the rest, and writes every recorded success afterwards', async () => {
    const warm = await addEndpoints(fleet, 20, ledger.url);
    const warmIds = warm.map((e) => e.id);
    const watch = watchLastSuccess(warmIds);
    processes = await startWorkerProcesses(
      2,
      workerEnv(fleet, {
        DATABASE_URL: proxiedDatabaseUrl(),
        // Slow enough (about 300 deliveries a second) that plenty are left for during and after the outage.
        HOOKFLEET_CONCURRENCY: '4',
        HOOKFLEET_RECORDER_FLUSH_MS: '100',
        // Longer than the outage, so the warm endpoints stay cached through it.
        HOOKFLEET_ENDPOINT_CACHE_MS: '60000',
        HOOKFLEET_DELIVERY_TIMEOUT_MS: '10000',
      }),
    );
    let coldJobs: string[] = [];
    let onPostponed: () => void = () => {};
    const coldPostponed = new Promise<void>((resolve) => (onPostponed = resolve));
    // A fan-out that cannot read its message is postponed (its job id is the message id).
    fanOutEvents.on('delayed', ({ jobId }) => {
      if (coldJobs.some((id) => id.startsWith(`${jobId}.`))) onPostponed();
    });
    const warmJobs = await sendMessages(fleet, 30, warmIds);
    await ledger.waitForUnique(300);

    // 1. The proxy drops every worker connection and refuses new ones for CUT_MS.
    proxy.cut();
    const cutAt = ledger.unique;
    // The producer still reaches PostgreSQL directly: endpoints the workers have never seen get messages.
    const cold = await addEndpoints(fleet, 3, ledger.url, warm.length);
    const coldIds = cold.map((e) => e.id);
    coldJobs = await sendMessages(fleet, 10, coldIds);
    // More for the warm endpoints, queued behind the cold ones.
    warmJobs.push(...(await sendMessages(fleet, 90, warmIds)));
    // Fan-outs that had read their message go on delivering to cached endpoints while
    // PostgreSQL is away; fan-outs that have not (the cold ones among them) are postponed.
    await coldPostponed;
    await new Promise((resolve) => setTimeout(resolve, CUT_MS)); // the outage itself: a duration, not an event
    const coldDuringCut = [...ledger.arrivals.keys()].filter((key) =>
      cold.some((_, i) => key.endsWith(` /e${warm.length + i}`)),
    );
    expect(coldDuringCut).toEqual([]);
    const deliveredInCut = ledger.unique - cutAt;
    proxy.restore();

    // 2. Then every worker session is terminated from the server side, while deliveries go on.
    const total = warmJobs.length + coldJobs.length;
    await ledger.waitForUnique(Math.min(ledger.unique + 100, total));
    // The workers reconnect when their recorders next retry (backoff up to a few seconds); PostgreSQL
    // has no event for that, so poll its session list (bounded).
    let terminated: { pid: number }[] = [];
    for (let i = 0; i < 100 && terminated.length === 0; i++) {
      terminated = await fleet.db.sql<{ pid: number }[]>`
        select pid, pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${APP_NAME} and datname = current_database()`;
      if (terminated.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(terminated.length).toBeGreaterThan(0);

    const ends = await allEnded(fleet, [...warmJobs, ...coldJobs]);
    expect(ends.filter((end) => end.state !== 'completed')).toEqual([]);
    expect(ledger.unique).toBe(total);
    expect(deliveredInCut).toBeGreaterThan(0);

    // Graceful stops flush the last records; neither process died of the dropped connections.
    const stops = await stopAll(processes);
    const logs = processes.flatMap((p) => p.logs);
    // On failure, show the workers' errors: an exit code alone does not say what went wrong.
    const warnings = JSON.stringify(
      logs.filter((l) => Number(l.level) >= 50 || /shut|clos/.test(String(l.msg))),
    ).slice(0, 4000);
    expect(
      stops.map((s) => s.code),
      warnings,
    ).toEqual([0, 0]);
    expect(logs.filter((l) => Number(l.level) >= 60)).toEqual([]);
    processes = [];
    clearInterval(sampling);
    expect(watch.backwards).toEqual([]);

    const records = await endpointRecords(fleet, [...warmIds, ...coldIds]);
    for (const record of records) {
      expect(record.lastSuccessAtMs).not.toBeNull();
      expect(record.lastSuccessAtMs).toBe(record.newestSucceededAtMs);
      expect(record.successCount).toBe(record.succeededAttempts);
      expect(record.failureCount).toBe(0);
      expect(record.failedAttempts).toBe(0);
    }
    expect(records.reduce((n, r) => n + r.successCount, 0)).toBe(ledger.total);
    // Postponing the cold deliveries did not spend a step of the retry schedule.
    const coldAttempts = await fleet.db.sql<{ n: number }[]>`
      select attempt_number as n from attempts where endpoint_id = any(${fleet.db.sql.array(coldIds)}::text[])`;
    expect(coldAttempts.map((a) => a.n)).toEqual(coldJobs.map(() => 1));
  }, 90_000);
});
