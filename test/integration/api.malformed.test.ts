import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { errorSchema } from '../../src/api/contracts.js';
import { API_KEY, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

let api: ApiHarness;
let endpointId: string;
let messageId: string;
beforeAll(async () => {
  api = await createApiHarness();
  endpointId = (await insertEndpoint(api.fleet.db.db, { url: 'http://127.0.0.1:9/hook' })).id;
  messageId = (await api.fleet.producer.send({ eventType: 'seed', payload: 1 })).id;
});
afterAll(async () => {
  await api.close();
});

const JSON_TYPE = { 'content-type': 'application/json' };
const deep = (levels: number) =>
  `{"eventType":"x","payload":${'['.repeat(levels)}${']'.repeat(levels)}}`;
const message = (extra: Record<string, unknown>) =>
  JSON.stringify({ eventType: 'order.paid', payload: {}, ...extra });

interface Case {
  name: string;
  method?: string;
  path: string | (() => string);
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  status: number;
  code?: string;
  /** Text the detail must mention. */
  mentions?: string;
}

const cases: Case[] = [
  {
    name: 'truncated JSON',
    path: '/v1/messages',
    body: '{"eventType":',
    status: 400,
    code: 'malformed_json',
  },
  {
    name: 'JSON with a trailing comma',
    path: '/v1/messages',
    body: '{"eventType":"a","payload":1,}',
    status: 400,
  },
  { name: 'an empty body', path: '/v1/messages', body: '', status: 400, mentions: 'empty' },
  {
    name: 'bytes that are not UTF-8',
    path: '/v1/messages',
    body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    status: 400,
    mentions: 'UTF-8',
  },
  { name: 'a JSON array instead of an object', path: '/v1/messages', body: '[]', status: 422 },
  { name: 'JSON null', path: '/v1/messages', body: 'null', status: 422 },
  { name: 'a JSON string', path: '/v1/messages', body: '"hello"', status: 422 },
  {
    name: 'text/plain',
    path: '/v1/messages',
    body: message({}),
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'no Content-Type',
    path: '/v1/messages',
    body: message({}),
    headers: { 'content-type': '' },
    status: 415,
  },
  {
    name: 'a form body',
    path: '/v1/messages',
    body: 'a=b',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
  },
  {
    name: 'an unknown field',
    path: '/v1/messages',
    body: message({ priority: 'high' }),
    status: 422,
    mentions: 'priority',
  },
  {
    name: 'an event type with a space',
    path: '/v1/messages',
    body: message({ eventType: 'order paid' }),
    status: 422,
    mentions: 'eventType',
  },
  {
    name: 'an empty event type',
    path: '/v1/messages',
    body: message({ eventType: '' }),
    status: 422,
    mentions: 'eventType',
  },
  {
    name: 'an event type of 300 characters',
    path: '/v1/messages',
    body: message({ eventType: 'a'.repeat(300) }),
    status: 422,
  },
  {
    name: 'an event type that is a number',
    path: '/v1/messages',
    body: message({ eventType: 7 }),
    status: 422,
  },
  {
    name: 'no payload',
    path: '/v1/messages',
    body: '{"eventType":"a"}',
    status: 422,
    mentions: 'payload',
  },
  {
    name: 'an empty idempotency key',
    path: '/v1/messages',
    body: message({ idempotencyKey: '' }),
    status: 422,
    mentions: 'idempotencyKey',
  },
  {
    name: 'a NUL in the idempotency key',
    path: '/v1/messages',
    body: message({ idempotencyKey: 'a\u0000b' }),
    status: 422,
    mentions: 'NUL',
  },
  {
    name: 'a NUL in a payload string',
    path: '/v1/messages',
    body: message({ payload: { note: 'a\u0000' } }),
    status: 422,
    mentions: 'payload.note',
  },
  {
    name: 'a NUL in a payload key',
    path: '/v1/messages',
    body: message({ payload: { 'a\u0000': 1 } }),
    status: 422,
  },
  {
    name: 'an unpaired surrogate',
    path: '/v1/messages',
    body: '{"eventType":"a","payload":"\\ud800"}',
    status: 422,
    mentions: 'surrogate',
  },
  {
    name: 'a __proto__ key',
    path: '/v1/messages',
    body: '{"eventType":"a","payload":{"__proto__":{"x":1}}}',
    status: 422,
    mentions: '__proto__',
  },
  {
    name: 'JSON nested 100000 deep',
    path: '/v1/messages',
    body: deep(100_000),
    status: 422,
    mentions: 'deeper',
  },
  { name: 'JSON nested 101 deep', path: '/v1/messages', body: deep(101), status: 422 },
  {
    name: 'empty endpointIds',
    path: '/v1/messages',
    body: message({ endpointIds: [] }),
    status: 422,
    mentions: 'endpointIds',
  },
  {
    name: 'endpointIds that are not ids',
    path: '/v1/messages',
    body: message({ endpointIds: ['../x'] }),
    status: 422,
    mentions: 'endpointIds.0',
  },
  {
    name: 'endpointIds as a string',
    path: '/v1/messages',
    body: message({ endpointIds: 'ep_1' }),
    status: 422,
  },
  {
    name: 'an endpoint without url',
    path: '/v1/endpoints',
    body: '{}',
    status: 422,
    mentions: 'url',
  },
  {
    name: 'an endpoint url that is not a URL',
    path: '/v1/endpoints',
    body: '{"url":"not a url"}',
    status: 422,
    mentions: 'url',
  },
  {
    name: 'a javascript: url',
    path: '/v1/endpoints',
    body: '{"url":"javascript:alert(1)"}',
    status: 422,
    mentions: 'javascript:',
  },
  {
    name: 'a url of 3000 characters',
    path: '/v1/endpoints',
    body: JSON.stringify({ url: `http://127.0.0.1/${'a'.repeat(3000)}` }),
    status: 422,
  },
  {
    name: 'an event type pattern with a space',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","eventTypes":["a b"]}',
    status: 422,
    mentions: 'eventTypes.0',
  },
  {
    name: 'a pattern with a wildcard in the middle',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","eventTypes":["a.*.b"]}',
    status: 422,
  },
  {
    name: 'staleAfterDays 0',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","staleAfterDays":0}',
    status: 422,
    mentions: 'staleAfterDays',
  },
  {
    name: 'staleAfterDays 1.5',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","staleAfterDays":1.5}',
    status: 422,
  },
  {
    name: 'staleAfterDays 1e999',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","staleAfterDays":1e999}',
    status: 422,
  },
  {
    name: 'staleAfterDays as a string',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","staleAfterDays":"10"}',
    status: 422,
  },
  {
    name: 'a description of 5000 characters',
    path: '/v1/endpoints',
    body: JSON.stringify({ url: 'http://127.0.0.1/', description: 'd'.repeat(5000) }),
    status: 422,
  },
  {
    name: 'verify as a string',
    path: '/v1/endpoints',
    body: '{"url":"http://127.0.0.1/","verify":"yes"}',
    status: 422,
    mentions: 'verify',
  },
  {
    name: 'an endpoint body over 64 KiB',
    path: '/v1/endpoints',
    body: JSON.stringify({ url: 'http://127.0.0.1/', description: 'd'.repeat(70_000) }),
    status: 413,
  },
  {
    name: 'an empty PATCH',
    method: 'PATCH',
    path: () => `/v1/endpoints/${endpointId}`,
    body: '{}',
    status: 422,
    mentions: 'at least one',
  },
  {
    name: 'PATCH active as a string',
    method: 'PATCH',
    path: () => `/v1/endpoints/${endpointId}`,
    body: '{"active":"true"}',
    status: 422,
  },
  {
    name: 'PATCH of the secret',
    method: 'PATCH',
    path: () => `/v1/endpoints/${endpointId}`,
    body: '{"secret":"whsec_x"}',
    status: 422,
    mentions: 'secret',
  },
  {
    name: 'rotate-secret with options',
    path: () => `/v1/endpoints/${endpointId}/rotate-secret`,
    body: '{"now":true}',
    status: 422,
  },
  {
    name: 'test with a bad event type',
    path: () => `/v1/endpoints/${endpointId}/test`,
    body: '{"eventType":"a b"}',
    status: 422,
  },
  {
    name: 'redeliver with endpointIds as a string',
    path: () => `/v1/messages/${messageId}/redeliver`,
    body: '{"endpointIds":"x"}',
    status: 422,
  },
  { name: 'limit=0', method: 'GET', path: '/v1/endpoints?limit=0', status: 422, mentions: 'limit' },
  { name: 'limit=abc', method: 'GET', path: '/v1/endpoints?limit=abc', status: 422 },
  { name: 'limit=101', method: 'GET', path: '/v1/endpoints?limit=101', status: 422 },
  {
    name: 'an unknown query parameter',
    method: 'GET',
    path: '/v1/endpoints?sort=desc',
    status: 422,
    mentions: 'sort',
  },
  {
    name: 'a cursor that is not an id',
    method: 'GET',
    path: "/v1/endpoints?cursor=' or 1=1 --",
    status: 422,
    mentions: 'cursor',
  },
  { name: 'a NUL in an endpoint id', method: 'GET', path: '/v1/endpoints/ep_%00', status: 404 },
  {
    name: 'an endpoint id of 10000 characters',
    method: 'GET',
    path: `/v1/endpoints/ep_${'a'.repeat(10_000)}`,
    status: 404,
  },
  {
    name: 'a broken percent-encoding',
    method: 'GET',
    path: '/v1/messages/msg_%E0%A4%A',
    status: 404,
  },
  { name: 'an unknown route', method: 'GET', path: '/v2/anything', status: 404, code: 'not_found' },
  {
    name: 'an unknown /v1 route',
    method: 'GET',
    path: '/v1/widgets',
    status: 404,
    code: 'not_found',
  },
  { name: 'an unsupported method', method: 'PUT', path: '/v1/endpoints', body: '{}', status: 404 },
  {
    name: 'no Authorization',
    method: 'GET',
    path: '/v1/endpoints',
    headers: { authorization: '' },
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'a wrong API key',
    method: 'GET',
    path: '/v1/endpoints',
    headers: { authorization: 'Bearer nope' },
    status: 401,
  },
  {
    name: 'the key with another scheme',
    method: 'GET',
    path: '/v1/endpoints',
    headers: { authorization: `Basic ${API_KEY}` },
    status: 401,
  },
  {
    name: 'Bearer without a key',
    method: 'GET',
    path: '/v1/endpoints',
    headers: { authorization: 'Bearer ' },
    status: 401,
  },
  {
    name: 'the dashboard without a password',
    method: 'GET',
    path: '/admin/queues',
    headers: { authorization: '' },
    status: 401,
  },
  {
    name: 'the dashboard with garbage credentials',
    method: 'GET',
    path: '/admin/queues',
    headers: { authorization: 'Basic %%%' },
    status: 401,
  },
];

describe('malformed requests', () => {
  it('the table holds at least twenty cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)('answers $status to $name, with a useful {code, detail}', async (c) => {
    const path = typeof c.path === 'function' ? c.path() : c.path;
    const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` };
    if (c.body !== undefined) Object.assign(headers, JSON_TYPE);
    Object.assign(headers, c.headers);
    for (const [name, value] of Object.entries(headers)) if (value === '') delete headers[name];
    const response = await api.app.request(path, {
      method: c.method ?? 'POST',
      headers,
      body: c.body,
    });
    const text = await response.text();
    expect(response.status, text).toBe(c.status);
    const error = errorSchema.parse(JSON.parse(text));
    expect(error.detail.length).toBeGreaterThan(5);
    if (c.code) expect(error.code).toBe(c.code);
    if (c.mentions) expect(error.detail).toContain(c.mentions);
    expect(text).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
  });
});
