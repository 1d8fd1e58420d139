import { once, type EventEmitter } from 'node:events';
import { insertEndpoint } from '../../src/db/endpoints.js';
import type { EndpointRow } from '../../src/db/schema.js';
import { deliveryJobId } from '../../src/jobs.js';
import type { DeliveryEnd, TestFleet } from './testFleet.js';
import { TEST_ENV } from './testFleet.js';
import { startWorkerProcess, type WorkerProcess } from './workerProcess.js';

/** The event type fault tests send; their endpoints subscribe to it. */
export const FAULT_EVENT = 'fault.test';

/** Environment for `hookfleet worker` processes serving `fleet` (its database, Redis and prefix). */
export function workerEnv(
  fleet: TestFleet,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...TEST_ENV,
    LOG_LEVEL: 'info',
    REDIS_URL: fleet.config.redisUrl,
    DATABASE_URL: fleet.config.databaseUrl!,
    HOOKFLEET_QUEUE_PREFIX: fleet.config.queuePrefix,
    ...extra,
  };
}

/** Starts `count` worker processes at once. */
export function startWorkerProcesses(
  count: number,
  env: Record<string, string>,
): Promise<WorkerProcess[]> {
  return Promise.all(Array.from({ length: count }, () => startWorkerProcess(env)));
}

/** `count` endpoints subscribed to FAULT_EVENT, at `${baseUrl}/e0`, `${baseUrl}/e1`, … */
export async function addEndpoints(
  fleet: TestFleet,
  count: number,
  baseUrl: string,
  from = 0,
): Promise<EndpointRow[]> {
  const rows: EndpointRow[] = [];
  for (let i = from; i < from + count; i++) {
    rows.push(
      await insertEndpoint(fleet.db.db, { url: `${baseUrl}/e${i}`, eventTypes: [FAULT_EVENT] }),
    );
  }
  return rows;
}

/** Sends `count` messages, each fanned out to every one of `endpointIds`; returns the delivery job ids. */
export async function sendMessages(
  fleet: TestFleet,
  count: number,
  endpointIds: string[],
): Promise<string[]> {
  const jobIds: string[] = [];
  for (let i = 0; i < count; i += 10) {
    const sent = await Promise.all(
      Array.from({ length: Math.min(10, count - i) }, (_, j) =>
        fleet.producer.send({ eventType: FAULT_EVENT, payload: { n: i + j }, endpointIds }),
      ),
    );
    for (const result of sent)
      jobIds.push(...result.endpointIds.map((id) => deliveryJobId(result.id, id)));
  }
  return jobIds;
}

/** Resolves when every one of these deliveries has ended (completed, or failed for good). */
export function allEnded(fleet: TestFleet, jobIds: string[]): Promise<DeliveryEnd[]> {
  return Promise.all(jobIds.map((id) => fleet.waitForDelivery(id)));
}

export interface EndpointRecord {
  id: string;
  lastSuccessAtMs: number | null;
  successCount: number;
  failureCount: number;
  /** From the attempts table: the newest succeeded attempt, and how many succeeded. */
  newestSucceededAtMs: number | null;
  succeededAttempts: number;
  failedAttempts: number;
}

/** What PostgreSQL holds for these endpoints: the row's columns next to its attempt history. */
export async function endpointRecords(fleet: TestFleet, ids: string[]): Promise<EndpointRecord[]> {
  const rows = await fleet.db.sql<
    {
      id: string;
      last_success_at: string | null;
      success_count: number;
      failure_count: number;
      newest: string | null;
      succeeded: number;
      failed: number;
    }[]
  >`
    select e.id, e.last_success_at, e.success_count::int as success_count, e.failure_count::int as failure_count,
      (select max(a.attempted_at) from attempts a where a.endpoint_id = e.id and a.outcome = 'succeeded') as newest,
      (select count(*)::int from attempts a where a.endpoint_id = e.id and a.outcome = 'succeeded') as succeeded,
      (select count(*)::int from attempts a where a.endpoint_id = e.id and a.outcome <> 'succeeded') as failed
    from endpoints e where e.id = any(${fleet.db.sql.array(ids)}::text[]) order by e.id`;
  const ms = (value: string | Date | null) => (value === null ? null : new Date(value).getTime());
  return rows.map((row) => ({
    id: row.id,
    lastSuccessAtMs: ms(row.last_success_at),
    successCount: row.success_count,
    failureCount: row.failure_count,
    newestSucceededAtMs: ms(row.newest),
    succeededAttempts: row.succeeded,
    failedAttempts: row.failed,
  }));
}

/** SIGTERMs every process at once; resolves with each one's exit code and how long it took. */
export async function stopAll(
  processes: WorkerProcess[],
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ code: number | null; ms: number }[]> {
  const startedMs = Date.now();
  return Promise.all(
    processes.map(async (p) => ({ code: await p.stop(signal), ms: Date.now() - startedMs })),
  );
}

/**
 * Resolves once the fleet's QueueEvents connection is ready again after Redis came back, so that
 * closing it does not hit BullMQ's hang on a connection waiting to reconnect (see TestFleetOptions).
 */
export async function untilEventsReady(fleet: TestFleet): Promise<void> {
  const client = (await fleet.events.getBackend().client) as unknown as EventEmitter & {
    status: string;
  };
  if (client.status !== 'ready') await once(client, 'ready');
}
