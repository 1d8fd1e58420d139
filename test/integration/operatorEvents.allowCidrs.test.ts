import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { createLogger } from '../../src/logger.js';
import { sweepStaleEndpoints } from '../../src/worker/staleSweep.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// Both receivers listen on 127.0.0.1; only the operator allow-list covers loopback.
let fleet: TestFleet;
let customer: Receiver;
let operator: Receiver;

beforeAll(async () => {
  customer = await startReceiver();
  operator = await startReceiver();
  fleet = await createTestFleet({
    HOOKFLEET_ALLOW_CIDRS: '',
    HOOKFLEET_OPERATOR_ALLOW_CIDRS: '127.0.0.0/8',
    HOOKFLEET_OPERATOR_WEBHOOK_URL: operator.url,
  });
  await fleet.startWorker().worker.waitUntilReady();
});
afterAll(async () => {
  await fleet.close();
  await Promise.all([customer.close(), operator.close()]);
});

describe('HOOKFLEET_OPERATOR_ALLOW_CIDRS covering loopback, HOOKFLEET_ALLOW_CIDRS empty', () => {
  it('refuses a delivery to a customer endpoint on 127.0.0.1', async () => {
    const endpoint = await insertEndpoint(fleet.db.db, { url: customer.url });
    const sent = await fleet.producer.send({
      eventType: 'order.paid',
      payload: { n: 1 },
      endpointIds: [endpoint.id],
    });

    const end = await fleet.waitForDelivery(deliveryJobId(sent.id, endpoint.id));

    expect(end).toMatchObject({ state: 'failed' });
    expect(end.state === 'failed' && end.reason).toContain('127.0.0.1 is a loopback address');
    expect(customer.requests).toHaveLength(0);
  });

  it('sends the operator receiver on 127.0.0.1 its events', async () => {
    const stale = await insertEndpoint(fleet.db.db, { url: customer.url });
    await fleet.db.sql`
      update endpoints set created_at = now() - interval '400 days' where id = ${stale.id}`;

    const result = await sweepStaleEndpoints({
      config: fleet.config,
      logger: createLogger(fleet.config),
      dbClient: fleet.db,
    });

    expect(result.deactivated).toBe(1);
    expect(result.eventsFailed).toBe(0);
    const [request] = await operator.waitForRequests(1);
    const event = JSON.parse(request!.body) as {
      type: string;
      data: { endpoints: { id: string }[] };
    };
    expect(event.type).toBe('endpoint.deactivated');
    expect(event.data.endpoints.map((e) => e.id)).toEqual([stale.id]);
    expect(customer.requests).toHaveLength(0);
  });
});
