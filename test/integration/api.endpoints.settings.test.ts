/**
 * An endpoint's payload format, custom headers and retry schedule through /v1/endpoints: what is
 * accepted, what is refused with a 4xx {code, detail}, and what a read shows (header values never).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdEndpointSchema, endpointSchema, errorSchema } from '../../src/api/contracts.js';
import { findEndpoint } from '../../src/db/endpoints.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

let api: ApiHarness;
beforeAll(async () => {
  // Retention of 20 days: 14 keep failed deliveries replayable, so schedules must be under 6 days.
  api = await createApiHarness({
    HOOKFLEET_MESSAGE_RETENTION_DAYS: '20',
    HOOKFLEET_RETRY_SCHEDULE: '1s',
  });
});
afterAll(async () => {
  await api.close();
});

async function create(body: Record<string, unknown>) {
  return api.call('POST', '/v1/endpoints', { body: { url: 'http://127.0.0.1:9/hook', ...body } });
}

function refusal(res: { status: number; body: unknown }) {
  expect(res.status).toBe(422);
  const error = errorSchema.parse(res.body);
  expect(error.code).toBe('validation_failed');
  return error;
}

describe('payloadFormat', () => {
  it('is envelope by default and raw when asked, and can be changed', async () => {
    const plain = createdEndpointSchema.parse((await create({})).body);
    expect(plain.payloadFormat).toBe('envelope');
    const raw = createdEndpointSchema.parse((await create({ payloadFormat: 'raw' })).body);
    expect(raw.payloadFormat).toBe('raw');
    const changed = await api.call('PATCH', `/v1/endpoints/${raw.id}`, {
      body: { payloadFormat: 'envelope' },
    });
    expect(endpointSchema.parse(changed.body).payloadFormat).toBe('envelope');
  });

  it('refuses anything else', async () => {
    const error = refusal(await create({ payloadFormat: 'xml' }));
    expect(error.fields?.[0]?.path).toBe('payloadFormat');
  });
});

describe('headers', () => {
  it('are stored, and shown by name with masked values on create, GET and list', async () => {
    const res = await create({ headers: { 'X-Api-Key': 'secret-1', 'X-Team': 'billing' } });
    expect(res.status).toBe(201);
    expect(res.text).not.toContain('secret-1');
    const { id } = createdEndpointSchema.parse(res.body);
    expect((await findEndpoint(api.fleet.db.db, id))!.headers).toEqual({
      'X-Api-Key': 'secret-1',
      'X-Team': 'billing',
    });
    const read = await api.call('GET', `/v1/endpoints/${id}`);
    expect(read.body.headers).toEqual({ 'X-Api-Key': '********', 'X-Team': '********' });
    const list = await api.call('GET', '/v1/endpoints?limit=100');
    expect(list.text).not.toContain('secret-1');
    expect(list.text).not.toContain('billing');
  });

  it.each([
    ['a hop-by-hop header', { Connection: 'close' }, 'hop-by-hop'],
    ['transfer-encoding', { 'Transfer-Encoding': 'chunked' }, 'hop-by-hop'],
    ['a proxy header', { 'Proxy-Authorization': 'Basic x' }, 'hop-by-hop'],
    ['host', { host: 'example.com' }, 'hop-by-hop'],
    ['content-length', { 'Content-Length': '1' }, 'hop-by-hop'],
    ['a webhook-* override', { 'Webhook-Signature': 'v1,forged' }, 'webhook-*'],
    ['an invalid name', { 'X Bad': 'v' }, 'header names'],
    ['a value with a line break', { 'X-Inject': 'a\r\nX-Evil: 1' }, 'visible ASCII'],
    ['the mask as a value', { 'X-Api-Key': '********' }, 'how values are shown'],
  ])('refuses %s with 422 naming the header', async (_what, headers, reason) => {
    const error = refusal(await create({ headers }));
    const name = Object.keys(headers)[0]!;
    expect(error.fields?.[0]?.path).toBe(`headers.${name}`);
    expect(error.detail).toContain(reason);
  });

  it('refuses more than 20 headers, and more than 8 KiB of them', async () => {
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, 'v']));
    expect(refusal(await create({ headers: many })).detail).toContain('at most 20 headers');
    const big = { 'X-A': 'a'.repeat(4000), 'X-B': 'b'.repeat(4000), 'X-C': 'c'.repeat(400) };
    expect(refusal(await create({ headers: big })).detail).toContain('8192 bytes');
  });

  it('change one at a time on PATCH: a value sets, null removes, the rest are kept', async () => {
    const { id } = createdEndpointSchema.parse(
      (await create({ headers: { 'X-Keep': 'k', 'X-Drop': 'd', 'x-change': 'old' } })).body,
    );
    const res = await api.call('PATCH', `/v1/endpoints/${id}`, {
      body: { headers: { 'X-Drop': null, 'X-Change': 'new', 'X-Add': 'a' } },
    });
    expect(res.status).toBe(200);
    expect((await findEndpoint(api.fleet.db.db, id))!.headers).toEqual({
      'X-Keep': 'k',
      'X-Change': 'new',
      'X-Add': 'a',
    });
  });

  it('refuses a PATCH whose result would pass the cap, and changes nothing', async () => {
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-H${i}`, 'v']));
    const { id } = createdEndpointSchema.parse((await create({ headers: twenty })).body);
    const res = await api.call('PATCH', `/v1/endpoints/${id}`, {
      body: { headers: { 'X-One-More': 'v' } },
    });
    expect(refusal(res).detail).toContain('at most 20 headers');
    expect(Object.keys((await findEndpoint(api.fleet.db.db, id))!.headers)).toHaveLength(20);
  });
});

describe('retrySchedule', () => {
  it('is stored in milliseconds and shown as durations; null restores the default', async () => {
    const res = await create({ retrySchedule: ['30s', '5m', 7_200_000] });
    expect(res.status).toBe(201);
    const { id, retrySchedule } = createdEndpointSchema.parse(res.body);
    expect(retrySchedule).toEqual(['30s', '5m', '2h']);
    expect((await findEndpoint(api.fleet.db.db, id))!.retryScheduleMs).toEqual([
      30_000, 300_000, 7_200_000,
    ]);
    const reset = await api.call('PATCH', `/v1/endpoints/${id}`, { body: { retrySchedule: null } });
    expect(endpointSchema.parse(reset.body).retrySchedule).toBeNull();
  });

  it.each([
    ['an empty list', [], 'at least one delay'],
    ['a delay under 1s', ['500ms'], 'from 1s to 24h'],
    ['a delay over 24h', ['25h'], 'from 1s to 24h'],
    ['a malformed delay', ['soon'], 'from 1s to 24h'],
    ['more than 20 retries', Array.from({ length: 21 }, () => '1s'), 'at most 20 retries'],
    [
      'a schedule longer than the retention allows',
      Array.from({ length: 7 }, () => '24h'),
      'HOOKFLEET_MESSAGE_RETENTION_DAYS',
    ],
  ])('refuses %s with 422', async (_what, retrySchedule, reason) => {
    const error = refusal(await create({ retrySchedule }));
    expect(error.fields?.[0]?.path).toMatch(/^retrySchedule/);
    expect(error.detail).toContain(reason);
  });

  it('refuses a PATCH past the retention too', async () => {
    const { id } = createdEndpointSchema.parse((await create({})).body);
    const res = await api.call('PATCH', `/v1/endpoints/${id}`, {
      body: { retrySchedule: Array.from({ length: 7 }, () => '24h') },
    });
    expect(refusal(res).detail).toContain('under 6 days');
  });
});
