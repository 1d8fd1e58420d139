import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { messageSchema, sendMessageResponse } from '../../src/api/contracts.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

// A real worker delivers here; one receiver holds its answer until the test lets it go.
let api: ApiHarness;
let held: Receiver;
let fast: Receiver;
const waitingAnswers: ServerResponse[] = [];
beforeAll(async () => {
  api = await createApiHarness();
  held = await startReceiver((_request, _index, res) => {
    waitingAnswers.push(res);
  });
  fast = await startReceiver();
});
afterAll(async () => {
  await api.close();
  await held.close();
  await fast.close();
});

async function statuses(messageId: string): Promise<Map<string, string>> {
  const res = await api.call('GET', `/v1/messages/${messageId}`);
  expect(res.status, res.text).toBe(200);
  const view = messageSchema.parse(res.body);
  return new Map(view.deliveries.map((d) => [d.endpointId, d.status]));
}

describe('GET /v1/messages/:id delivery status', () => {
  it('tells queued, in flight and succeeded apart', async () => {
    const slow = (await insertEndpoint(api.fleet.db.db, { url: held.url })).id;
    const quick = (await insertEndpoint(api.fleet.db.db, { url: fast.url })).id;
    const res = await api.call('POST', '/v1/messages', {
      body: { eventType: 'status.test', payload: { n: 1 }, endpointIds: [slow, quick] },
    });
    expect(res.status, res.text).toBe(202);
    const { id } = sendMessageResponse.parse(res.body);

    // No worker yet: both wait in the queue.
    expect(await statuses(id)).toEqual(
      new Map([
        [slow, 'queued'],
        [quick, 'queued'],
      ]),
    );

    api.fleet.startWorker();
    await held.waitForRequests(1);
    await api.fleet.waitForDelivery(deliveryJobId(id, quick));
    await api.fleet.flushRecorders();
    // Shown once the attempt has been sending for SENDING_VISIBLE_AFTER_MS (100 ms), which only
    // polling the API can see.
    await vi.waitFor(async () => expect((await statuses(id)).get(slow)).toBe('in_flight'), {
      timeout: 5000,
      interval: 25,
    });
    expect(await statuses(id)).toEqual(
      new Map([
        [slow, 'in_flight'],
        [quick, 'succeeded'],
      ]),
    );

    waitingAnswers.shift()!.writeHead(204).end();
    await api.fleet.waitForDelivery(deliveryJobId(id, slow));
    await api.fleet.flushRecorders();
    expect((await statuses(id)).get(slow)).toBe('succeeded');
  });
});
