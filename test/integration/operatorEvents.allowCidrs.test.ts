import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { createOperatorEvents } from '../../src/delivery/operatorEvents.js';
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

    const logger = createLogger(fleet.config);
    const events = createOperatorEvents({
      sql: fleet.db.sql,
      queue: fleet.producer.messagesQueue,
      config: fleet.config,
      logger,
    });
    const result = await sweepStaleEndpoints({
      config: fleet.config,
      logger,
      dbClient: fleet.db,
      events,
    });

    expect(result.deactivated).toBe(1);
    expect(result.eventsFailed).toBe(0);
    // The worker delivers the event through its operator client, whose guard allows loopback.
    const [request] = await operator.waitForRequests(1);
    const event = JSON.parse(request!.body) as {
      type: string;
      data: { endpointId: string; reason: string };
    };
    expect(event).toMatchObject({
      type: 'endpoint.disabled',
      data: { endpointId: stale.id, reason: 'stale' },
    });
    expect(customer.requests).toHaveLength(0);
  });
});
