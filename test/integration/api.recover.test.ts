import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { attempts } from '../../src/db/schema.js';
import { RETRY_JOB, deliveryJobId } from '../../src/jobs.js';
import { errorSchema, recoverEndpointResponse } from '../../src/api/contracts.js';
import { openApiDocument } from '../../src/api/openapi.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

// No worker runs in this file: failures are written to the attempt history directly, and the
// jobs the recover route adds stay in the queue where the tests can look at them.
let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness();
});
afterAll(async () => {
  await api.close();
});

const url = 'http://127.0.0.1:9/hook';

async function newEndpoint(): Promise<string> {
  return (await insertEndpoint(api.fleet.db.db, { url, eventTypes: ['recover.test'] })).id;
}

/** Sends one message to `endpointId` and records its final attempt as failed `agoMs` ago. */
async function failedDelivery(endpointId: string, agoMs: number): Promise<string> {
  const sent = await api.fleet.producer.send({
    eventType: 'recover.test',
    payload: { endpointId },
    endpointIds: [endpointId],
  });
  await api.fleet.db.db.insert(attempts).values({
    messageId: sent.id,
    endpointId,
    attemptNumber: 8,
    attemptedAt: new Date(Date.now() - agoMs),
    outcome: 'failed',
    statusCode: 500,
    durationMs: 12,
    error: 'HTTP 500',
  });
  return sent.id;
}

const recover = (id: string, body: unknown) =>
  api.call('POST', `/v1/endpoints/${id}/recover`, { body });

describe('POST /v1/endpoints/:id/recover', () => {
  it('replays the failures since `since` and answers 202 with what was done', async () => {
    const id = await newEndpoint();
    const other = await newEndpoint();
    const expired = await failedDelivery(id, 60_000);
    const queued = await failedDelivery(id, 120_000);
    await failedDelivery(id, 3 * 3600_000); // before `since`
    await failedDelivery(other, 60_000); // another endpoint
    // The first has no job (its fan-out made the attempt); the second has one still waiting.
    await api.fleet.producer.deliveriesQueue.add(
      RETRY_JOB,
      { messageId: queued, endpointId: id, enqueuedAtMs: Date.now() },
      { jobId: deliveryJobId(queued, id) },
    );
    expect(
      await api.fleet.producer.deliveriesQueue.getJob(deliveryJobId(expired, id)),
    ).toBeUndefined();
    const jobsBefore = await api.fleet.producer.deliveriesQueue.getJobCounts('waiting');

    const res = await recover(id, { since: new Date(Date.now() - 3600_000).toISOString() });

    expect(res.status, res.text).toBe(202);
    expect(recoverEndpointResponse.parse(res.body)).toEqual({
      total: 2,
      retried: 0,
      enqueued: 1,
      pending: 1,
    });
    const jobsAfter = await api.fleet.producer.deliveriesQueue.getJobCounts('waiting');
    expect(jobsAfter.waiting).toBe(jobsBefore.waiting! + 1);
    const job = await api.fleet.producer.deliveriesQueue.getJob(deliveryJobId(queued, id));
    expect(await job?.getState()).toBe('waiting');
  });

  it('accepts a time zone offset and answers zeros when nothing failed', async () => {
    const id = await newEndpoint();
    const res = await recover(id, { since: '2024-05-01T12:00:00+02:00' });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ total: 0, retried: 0, enqueued: 0, pending: 0 });
  });

  it.each([
    ['a missing since', {}, /since/],
    ['a since that is not a date-time', { since: 'yesterday' }, /since: expected an ISO 8601/],
    ['a since without a time zone', { since: '2024-05-01T12:00:00' }, /since: expected an ISO/],
    [
      'a since in the future',
      { since: '2999-01-01T00:00:00Z' },
      /since: must not be in the future/,
    ],
    ['an unknown field', { since: '2024-05-01T12:00:00Z', until: 'x' }, /until/],
  ])('answers 422 for %s', async (_what, body, detail) => {
    const res = await recover(await newEndpoint(), body);
    expect(res.status, res.text).toBe(422);
    const error = errorSchema.parse(res.body);
    expect(error.code).toBe('validation_failed');
    expect(error.detail).toMatch(detail);
  });

  it('answers 404 for an unknown endpoint, and for something that is not an endpoint id', async () => {
    for (const id of ['ep_unknown', 'nope']) {
      const res = await recover(id, { since: '2024-05-01T12:00:00Z' });
      expect(res.status).toBe(404);
      expect(errorSchema.parse(res.body).code).toBe('not_found');
    }
  });

  it('answers 409 for a disabled endpoint, whose deliveries would fail again at once', async () => {
    const id = await newEndpoint();
    await setEndpointActive(api.fleet.db.db, id, false);
    const res = await recover(id, { since: '2024-05-01T12:00:00Z' });
    expect(res.status).toBe(409);
    expect(errorSchema.parse(res.body).code).toBe('endpoint_inactive');
  });

  it('needs the API key', async () => {
    const res = await api.call('POST', `/v1/endpoints/${await newEndpoint()}/recover`, {
      body: { since: '2024-05-01T12:00:00Z' },
      anonymous: true,
    });
    expect(res.status).toBe(401);
  });

  it('is documented in /openapi.json', () => {
    const doc = openApiDocument() as { paths: Record<string, { post?: unknown }> };
    expect(doc.paths['/v1/endpoints/{id}/recover']?.post).toMatchObject({
      responses: {
        '202': expect.any(Object),
        '404': expect.any(Object),
        '422': expect.any(Object),
      },
    });
  });
});
