import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { listFailedDeliveries } from '../../src/db/failedDeliveries.js';
import { createLogger } from '../../src/logger.js';
import type { RunningWorker } from '../../src/worker/startWorker.js';
import { sweepStaleEndpoints } from '../../src/worker/staleSweep.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let receiver: Receiver;
let worker: RunningWorker;

beforeAll(async () => {
  // A 1 ms endpoint cache: the worker sees the deactivation on its next lookup.
  fleet = await createTestFleet({ HOOKFLEET_ENDPOINT_CACHE_MS: '1' });
  receiver = await startReceiver();
  worker = fleet.startWorker();
  await worker.worker.waitUntilReady();
});
afterAll(async () => {
  await fleet.close();
  await receiver.close();
});

describe('deliveries queued for an endpoint the sweep deactivates', () => {
  it('are not sent: they end in the failed list with the reason', async () => {
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    await fleet.db.sql`
      update endpoints set created_at = now() - interval '500 days', last_success_at = now() - interval '400 days'
      where id = ${endpoint.id}`;
    // The worker runs, but the paused queue hands it nothing while the fan-outs wait and the sweep runs.
    const queue = fleet.producer.messagesQueue;
    await queue.pause();
    const jobIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = await fleet.producer.send({
        eventType: 'order.paid',
        payload: { i },
        endpointIds: [endpoint.id],
      });
      expect(sent.deliveries).toBe(1);
      jobIds.push(deliveryJobId(sent.id, endpoint.id));
    }
    expect(await queue.getJobCounts('waiting', 'active')).toEqual({ waiting: 3, active: 0 });

    const result = await sweepStaleEndpoints({
      config: fleet.config,
      logger: createLogger(fleet.config),
      dbClient: fleet.db,
    });
    expect(result.deactivated).toBe(1);
    expect((await findEndpoint(fleet.db.db, endpoint.id))!.active).toBe(false);

    await queue.resume();
    const ends = await Promise.all(jobIds.map((id) => fleet.waitForDelivery(id)));

    const reason = `endpoint ${endpoint.id} is disabled (stale)`;
    expect(ends).toEqual(jobIds.map(() => ({ state: 'failed', reason })));
    await fleet.flushRecorders();
    const failed = await listFailedDeliveries(fleet.db.db, { endpointId: endpoint.id });
    expect(failed.map((f) => deliveryJobId(f.messageId, f.endpointId)).sort()).toEqual(
      [...jobIds].sort(),
    );
    expect(failed.every((f) => f.error === reason && f.attemptNumber === 1)).toBe(true);
    expect(receiver.requests).toHaveLength(0);
  });
});
