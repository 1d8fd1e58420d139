import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { attempts, endpoints } from '../../src/db/schema.js';
import { deliveryJobId } from '../../src/jobs.js';
import type { SendResult } from '../../src/producer/producer.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, TEST_ENV, type TestFleet } from '../helpers/testFleet.js';
import { TEST_REDIS_URL } from '../helpers/testRedis.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/workerProcess.js';

let fleet: TestFleet;
let receiver: Receiver;
const processes: WorkerProcess[] = [];

/** Answers 204 after `delayMs`, so deliveries overlap and a shutdown finds some in flight. */
function slowReceiver(delayMs: number) {
  return startReceiver((_req, _i, res) => {
    setTimeout(() => res.writeHead(204).end(), delayMs);
  });
}

function workerEnv(extra: Record<string, string> = {}) {
  return {
    ...TEST_ENV,
    LOG_LEVEL: 'info',
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: fleet.config.databaseUrl!,
    HOOKFLEET_QUEUE_PREFIX: fleet.config.queuePrefix,
    HOOKFLEET_CONCURRENCY: '10',
    ...extra,
  };
}

async function sendMany(count: number, endpointIds: string[]): Promise<SendResult[]> {
  const results: SendResult[] = [];
  for (let i = 0; i < count; i += 50) {
    results.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, (_, j) =>
          fleet.producer.send({ eventType: 'load.test', payload: { n: i + j }, endpointIds }),
        ),
      )),
    );
  }
  return results;
}

/** Resolves when every delivery of these messages has ended. */
function allEnded(results: SendResult[]) {
  return Promise.all(
    results.flatMap((r) =>
      r.endpointIds.map((endpointId) => fleet.waitForDelivery(deliveryJobId(r.id, endpointId))),
    ),
  );
}

beforeAll(async () => {
  fleet = await createTestFleet();
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')));
  await receiver?.close();
  await fleet.close();
});

describe('a fleet of worker processes', () => {
  it('shares one queue between two processes and delivers each job exactly once', async () => {
    receiver = await slowReceiver(5);
    const a = await insertEndpoint(fleet.db.db, {
      url: `${receiver.url}/a`,
      eventTypes: ['load.test'],
    });
    const b = await insertEndpoint(fleet.db.db, {
      url: `${receiver.url}/b`,
      eventTypes: ['load.test'],
    });
    // Started side by side: each spends a second or two starting Node and tsx.
    processes.push(
      ...(await Promise.all([startWorkerProcess(workerEnv()), startWorkerProcess(workerEnv())])),
    );

    const ends = await allEnded(await sendMany(200, [a.id, b.id]));
    expect(ends.every((end) => end.state === 'completed')).toBe(true);
    const deliveries = receiver.requests.map((r) => `${String(r.headers['webhook-id'])} ${r.path}`);
    expect(new Set(deliveries).size).toBe(400);

    // A fan-out's last delivery can end just before BullMQ marks the fan-out completed; after a
    // graceful stop every fan-out has been settled.
    await Promise.all(processes.splice(0).map((p) => p.stop('SIGTERM')));
    // One fan-out per message, shared between the processes.
    const completed = await fleet.producer.messagesQueue.getJobs(['completed'], 0, 500);
    expect(completed).toHaveLength(200);
    expect(new Set(completed.map((job) => job.processedBy)).size).toBe(2);
    expect(receiver.requests).toHaveLength(400);

    const [counts] = await fleet.db.db
      .select({ total: sql<number>`sum(${endpoints.successCount})::int` })
      .from(endpoints)
      .where(sql`${endpoints.id} in (${a.id}, ${b.id})`);
    expect(counts!.total).toBe(400);
    await receiver.close();
  });

  it('loses no recorded success when SIGTERM arrives during load, and leaves no job active', async () => {
    receiver = await slowReceiver(30);
    const endpoint = await insertEndpoint(fleet.db.db, {
      url: receiver.url,
      eventTypes: ['load.test'],
    });
    const worker = await startWorkerProcess(workerEnv({ HOOKFLEET_RECORDER_FLUSH_MS: '60000' }));
    processes.push(worker);
    const sent = await sendMany(300, [endpoint.id]);
    await receiver.waitForRequests(50);

    // The recorder flushes only every minute here, so everything recorded so far is in memory:
    // the graceful shutdown must write it.
    expect(await worker.stop('SIGTERM')).toBe(0);
    processes.splice(processes.indexOf(worker), 1);
    const answered = receiver.requests.length;
    expect(answered).toBeLessThan(300);

    for (const queue of [fleet.producer.messagesQueue, fleet.producer.deliveriesQueue]) {
      expect((await queue.getJobCounts('active')).active).toBe(0);
    }
    const [row] = await fleet.db.db.select().from(endpoints).where(eq(endpoints.id, endpoint.id));
    expect(row!.successCount).toBe(answered);
    const succeeded = await fleet.db.db
      .select({ n: sql<number>`count(*)::int`, newest: sql<Date>`max(${attempts.attemptedAt})` })
      .from(attempts)
      .where(sql`${attempts.endpointId} = ${endpoint.id} and ${attempts.outcome} = 'succeeded'`);
    expect(succeeded[0]!.n).toBe(answered);
    expect(row!.lastSuccessAt?.getTime()).toBe(new Date(succeeded[0]!.newest).getTime());

    // Nothing was lost: a new worker delivers the rest.
    const next = await startWorkerProcess(workerEnv());
    processes.push(next);
    await allEnded(sent);
    const ids = new Set(receiver.requests.map((r) => r.headers['webhook-id']));
    expect(ids.size).toBe(300);
  });
});
