/**
 * A worker's endpoint cache keeps a row until its change notification arrives (or
 * HOOKFLEET_ENDPOINT_CACHE_MS passes): right after an endpoint is re-enabled, the cached row may
 * still say disabled. A delivery attempted then must not fail for good on that row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let receiver: Receiver;

beforeAll(async () => {
  fleet = await createTestFleet();
  receiver = await startReceiver();
});
afterAll(async () => {
  await fleet.close();
  await receiver.close();
});

describe('a delivery whose cached endpoint row is disabled or missing', () => {
  it('is delivered when the endpoint was re-enabled a moment ago: the row is read again before failing', async () => {
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    const send = () =>
      fleet.producer.send({ eventType: 'test.event', payload: {}, endpointIds: [endpoint.id] });
    // Accepted while the endpoint was active, delivered once it is disabled: the worker's cache
    // reads the disabled row, and keeps it (ten minutes, unless told of a change).
    const before = await send();
    await setEndpointActive(fleet.db.db, endpoint.id, false, 'manual');
    fleet.startWorker({ HOOKFLEET_ENDPOINT_CACHE_MS: '600000' });
    expect(await fleet.waitForDelivery(deliveryJobId(before.id, endpoint.id))).toEqual({
      state: 'failed',
      reason: `endpoint ${endpoint.id} is disabled (manual)`,
    });

    // Re-enabled as setEndpointActive does, with the change notification held back for good
    // (triggers do not fire for a session in replica mode): the worker is where it would be in
    // the moments before the notification arrives.
    await fleet.db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update endpoints set active = true, reactivated_at = now(), deactivated_at = null,
        deactivation_reason = null, failing_since = null where id = ${endpoint.id}`;
    });
    const after = await send();
    expect(await fleet.waitForDelivery(deliveryJobId(after.id, endpoint.id))).toEqual({
      state: 'completed',
    });
    expect(receiver.requests.map((request) => request.headers['webhook-id'])).toEqual([after.id]);
  });

  it('still fails a delivery for good when the row read afresh says the endpoint was deleted', async () => {
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    await fleet.db.sql`delete from endpoints where id = ${endpoint.id}`;
    fleet.startWorker();
    // A delivery queued before the endpoint was deleted:
    const jobId = await fleet.queueDelivery('msg_queued_before', endpoint.id);
    expect(await fleet.waitForDelivery(jobId)).toEqual({
      state: 'failed',
      reason: `endpoint ${endpoint.id} was deleted`,
    });
  });
});
