/**
 * The endpoint lifecycle end to end, on a real worker, PostgreSQL, Redis and HTTP receivers:
 * 410 disables at once, a failing streak is warned and then disabled, a success after the warning
 * is reported as recovered, and every operational event reaches the operator receiver signed,
 * through the message pipeline (retried after a 500, attempts recorded).
 */
import type { ShardedQueue } from '../../src/queueShards.js';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEndpoint, insertEndpoint, listEndpoints } from '../../src/db/endpoints.js';
import { OPERATOR_ENDPOINT_ID } from '../../src/db/operatorMessages.js';
import { createOperatorEvents } from '../../src/delivery/operatorEvents.js';
import { newSecret } from '../../src/ids.js';
import { deliveryJobId, type DeliveryJobData } from '../../src/jobs.js';
import { createLogger } from '../../src/logger.js';
import { replayFailedDeliveries } from '../../src/producer/replayFailed.js';
import { sweepFailingEndpoints } from '../../src/worker/failingSweep.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;
let operator: Receiver;
let customer: Receiver;
const secret = newSecret();
/** Status the customer receiver answers, per path after its `/hook`. */
const statusOf = new Map<string, number>();

beforeAll(async () => {
  operator = await startReceiver();
  customer = await startReceiver((request, _index, res) => {
    res.writeHead(statusOf.get(request.path.slice('/hook'.length)) ?? 204).end();
  });
  fleet = await createTestFleet({
    HOOKFLEET_OPERATOR_WEBHOOK_URL: operator.url,
    HOOKFLEET_OPERATOR_WEBHOOK_SECRET: secret,
    // Failures in a row must not hold deliveries back here: the breaker is not under test.
    HOOKFLEET_CIRCUIT_FAILURES: '0',
  });
  fleet.startWorker();
});
afterAll(async () => {
  await fleet.close();
  await Promise.all([operator.close(), customer.close()]);
});

interface OperatorEventBody {
  type: string;
  timestamp: string;
  data: Record<string, unknown> & { endpointId: string; ownerId: string | null };
}

/** Waits for the operator receiver to get an event of `type` about `endpointId`. */
async function operatorEvent(
  type: string,
  endpointId: string,
): Promise<{ event: OperatorEventBody; request: ReceivedRequest }> {
  for (let seen = 0; ; seen++) {
    const requests = await operator.waitForRequests(seen + 1);
    const request = requests[seen]!;
    const event = JSON.parse(request.body) as OperatorEventBody;
    if (event.type === type && event.data.endpointId === endpointId) return { event, request };
  }
}

function verify(request: ReceivedRequest): unknown {
  return new Webhook(secret).verify(request.body, {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  });
}

async function endpointAt(path: string, ownerId?: string) {
  return insertEndpoint(fleet.db.db, { url: `${customer.url}${path}`, ownerId });
}

/** Sends one message to `endpointId` and waits until its delivery ends. */
async function deliver(endpointId: string, ownerId?: string) {
  const sent = await fleet.producer.send({
    eventType: 'order.paid',
    payload: { n: 1 },
    endpointIds: [endpointId],
    ...(ownerId !== undefined && { ownerId }),
  });
  const end = await fleet.waitForDelivery(deliveryJobId(sent.id, endpointId));
  await fleet.flushRecorders();
  return { messageId: sent.id, end };
}

function failingSweep(now = new Date()) {
  const logger = createLogger(fleet.config);
  const events = createOperatorEvents({
    sql: fleet.db.sql,
    queue: fleet.producer.messages,
    config: fleet.config,
    logger,
  });
  return sweepFailingEndpoints(
    { config: fleet.config, dbClient: fleet.db, events },
    { now, batchSize: 100 },
  );
}

/** Moves an endpoint's failing streak `hours` into the past, as if it had been failing that long. */
async function failingFor(endpointId: string, hours: number) {
  await fleet.db.sql`
    update endpoints set failing_since = now() - ${hours}::int * interval '1 hour'
    where id = ${endpointId}`;
}

describe('410 Gone', () => {
  it('disables the endpoint at once with reason gone, without a retry, and tells the operator', async () => {
    statusOf.set('/gone', 410);
    const endpoint = await endpointAt('/gone', 'org_gone');

    const { end } = await deliver(endpoint.id, 'org_gone');

    expect(end.state).toBe('failed');
    expect(customer.requests.filter((r) => r.path === '/hook/gone')).toHaveLength(1);
    const row = (await findEndpoint(fleet.db.db, endpoint.id))!;
    expect(row).toMatchObject({ active: false, deactivationReason: 'gone' });
    const { event, request } = await operatorEvent('endpoint.disabled', endpoint.id);
    expect(event.data).toMatchObject({ reason: 'gone', ownerId: 'org_gone' });
    expect(() => verify(request)).not.toThrow();
  });
});

describe('failing endpoints', () => {
  it('keeps failing_since at the first failure of a streak and clears it with a success', async () => {
    statusOf.set('/streak', 500);
    const endpoint = await endpointAt('/streak');

    await deliver(endpoint.id);
    const first = (await findEndpoint(fleet.db.db, endpoint.id))!.failingSince;
    await deliver(endpoint.id);
    const second = (await findEndpoint(fleet.db.db, endpoint.id))!.failingSince;
    statusOf.set('/streak', 204);
    await deliver(endpoint.id);
    const after = (await findEndpoint(fleet.db.db, endpoint.id))!;

    expect(first).toBeInstanceOf(Date);
    expect(second).toEqual(first);
    expect(after.failingSince).toBeNull();
    expect(after.lastSuccessAt).not.toBeNull();
  });

  it('warns at half the threshold, disables past it, and the deliveries it holds are replayable after enabling', async () => {
    statusOf.set('/failing', 500);
    const endpoint = await endpointAt('/failing', 'org_f');
    await deliver(endpoint.id, 'org_f');

    await failingFor(endpoint.id, 59);
    expect(await failingSweep()).toMatchObject({ disabled: 0, warned: 0 });
    await failingFor(endpoint.id, 61);
    expect(await failingSweep()).toMatchObject({ disabled: 0, warned: 1 });
    expect(await failingSweep()).toMatchObject({ disabled: 0, warned: 0 });
    const warning = await operatorEvent('endpoint.failing_warning', endpoint.id);
    expect(warning.event.data).toMatchObject({ ownerId: 'org_f', failingDisableAfterHours: 120 });

    await failingFor(endpoint.id, 121);
    expect(await failingSweep()).toMatchObject({ disabled: 1 });
    const row = (await findEndpoint(fleet.db.db, endpoint.id))!;
    expect(row).toMatchObject({ active: false, deactivationReason: 'failing' });
    const disabled = await operatorEvent('endpoint.disabled', endpoint.id);
    expect(disabled.event.data).toMatchObject({ reason: 'failing', ownerId: 'org_f' });
    expect(() => verify(disabled.request)).not.toThrow();

    // Enabling ends the streak (the sweep would otherwise disable it again at once), is
    // reported, and the failed delivery can be replayed to the receiver, now answering.
    statusOf.set('/failing', 204);
    const { changed } = await fleet.producer.setEndpointActive(endpoint.id, true);
    expect(changed).toBe(true);
    expect((await findEndpoint(fleet.db.db, endpoint.id))!.failingSince).toBeNull();
    await operatorEvent('endpoint.enabled', endpoint.id);
    const before = customer.requests.length;
    const replay = await replayFailedDeliveries(
      {
        db: fleet.db.db,
        queue: fleet.producer.deliveries as ShardedQueue<DeliveryJobData>,
      },
      { endpointId: endpoint.id, since: new Date(Date.now() - 3_600_000) },
    );
    expect(replay.total).toBe(1);
    await customer.waitForRequests(before + 1);
  });

  it("uses the endpoint's own failingDisableAfterHours", async () => {
    statusOf.set('/short', 500);
    const endpoint = await endpointAt('/short');
    await fleet.db
      .sql`update endpoints set failing_disable_after_hours = 2 where id = ${endpoint.id}`;
    await deliver(endpoint.id);

    await failingFor(endpoint.id, 3);
    expect(await failingSweep()).toMatchObject({ disabled: 1 });
    expect((await findEndpoint(fleet.db.db, endpoint.id))!.deactivationReason).toBe('failing');
  });

  it('reports endpoint.recovered at the first success after a failing warning', async () => {
    statusOf.set('/recovers', 500);
    const endpoint = await endpointAt('/recovers', 'org_r');
    await deliver(endpoint.id, 'org_r');
    await failingFor(endpoint.id, 70);
    expect(await failingSweep()).toMatchObject({ warned: 1 });

    statusOf.set('/recovers', 204);
    const { end } = await deliver(endpoint.id, 'org_r');

    expect(end.state).toBe('completed');
    const { event, request } = await operatorEvent('endpoint.recovered', endpoint.id);
    expect(event.data).toMatchObject({ ownerId: 'org_r' });
    expect(() => verify(request)).not.toThrow();
  });
});

describe('operational events', () => {
  it('reports a delivery whose last retry failed as message.attempt.exhausted', async () => {
    statusOf.set('/exhausted', 503);
    const endpoint = await endpointAt('/exhausted');

    const { messageId, end } = await deliver(endpoint.id);

    expect(end.state).toBe('failed');
    const { event } = await operatorEvent('message.attempt.exhausted', endpoint.id);
    expect(event.data).toMatchObject({ messageId, attempts: 4, ownerId: null });
  });

  it('retries an event after the operator receiver answers 500, with the same webhook-id, and records both attempts', async () => {
    const endpoint = await endpointAt('/manual');
    const seen = operator.requests.length;
    operator.respondWith((request, index, res) => {
      const type = (JSON.parse(request.body) as OperatorEventBody).type;
      res.writeHead(index === seen && type === 'endpoint.disabled' ? 500 : 204).end();
    });
    try {
      await fleet.producer.setEndpointActive(endpoint.id, false);
      const requests = await operator.waitForRequests(seen + 2);
      const [first, second] = requests.slice(seen);
      expect(first!.headers['webhook-id']).toBe(second!.headers['webhook-id']);
      const event = JSON.parse(second!.body) as OperatorEventBody;
      expect(event).toMatchObject({
        type: 'endpoint.disabled',
        data: { endpointId: endpoint.id, reason: 'manual', ownerId: null },
      });
      expect(typeof event.timestamp).toBe('string');
      expect(() => verify(first!)).not.toThrow();
      expect(() => verify(second!)).not.toThrow();
      const messageId = String(first!.headers['webhook-id']);
      await fleet.waitForDelivery(deliveryJobId(messageId, OPERATOR_ENDPOINT_ID));
      await fleet.flushRecorders();
      const attempts = await fleet.db.sql<{ outcome: string; status_code: number }[]>`
        select outcome, status_code from attempts
        where message_id = ${messageId} order by attempt_number`;
      expect(attempts).toEqual([
        { outcome: 'retrying', status_code: 500 },
        { outcome: 'succeeded', status_code: 204 },
      ]);
    } finally {
      operator.respondWith((_request, _index, res) => void res.writeHead(204).end());
    }
  });

  it("keeps the operator's endpoint out of endpoint lists and customer sends", async () => {
    const listed = await listEndpoints(fleet.db.db, 1000);
    expect(listed.map((e) => e.id)).not.toContain(OPERATOR_ENDPOINT_ID);
    expect(await findEndpoint(fleet.db.db, OPERATOR_ENDPOINT_ID)).toMatchObject({
      url: operator.url,
      secret,
    });
    const sent = await fleet.producer.send({ eventType: 'endpoint.disabled', payload: {} });
    expect(sent.endpointIds).not.toContain(OPERATOR_ENDPOINT_ID);
  });
});
