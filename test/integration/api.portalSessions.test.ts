import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createdEndpointSchema,
  endpointListSchema,
  errorSchema,
  messageListSchema,
  portalSessionSchema,
  sendMessageResponse,
} from '../../src/api/contracts.js';
import { portalSessions } from '../../src/db/schema.js';
import { createApiHarness, type ApiHarness, type CallOptions } from '../helpers/apiHarness.js';

// Two owners side by side, and an ownerless endpoint; no worker: messages stay queued.
let api: ApiHarness;
const url = 'http://127.0.0.1:9/hook';
const A = 'org_a';
const B = 'org_b';
let epA: string;
let epB: string;
let epNone: string;
let msgA: string;
let msgB: string;
let tokenA: string;

beforeAll(async () => {
  api = await createApiHarness();
  epA = await register(A);
  epB = await register(B);
  epNone = await register(undefined);
  msgA = await send(A);
  msgB = await send(B);
  tokenA = (await session(A)).token;
});
afterAll(async () => {
  await api.close();
});

async function register(ownerId: string | undefined) {
  const res = await api.call('POST', '/v1/endpoints', { body: { url, ownerId } });
  expect(res.status, res.text).toBe(201);
  return createdEndpointSchema.parse(res.body).id;
}

async function send(ownerId: string) {
  const res = await api.call('POST', '/v1/messages', {
    body: { ownerId, eventType: 'order.paid', payload: { for: ownerId } },
  });
  expect(res.status, res.text).toBe(202);
  return sendMessageResponse.parse(res.body).id;
}

async function session(ownerId: string, body?: Record<string, unknown>) {
  const res = await api.call('POST', `/v1/owners/${ownerId}/portal-sessions`, { body });
  expect(res.status, res.text).toBe(201);
  return portalSessionSchema.parse(res.body);
}

/** A call with a portal token instead of the API key. */
function as(token: string, method: string, path: string, options: CallOptions = {}) {
  return api.call(method, path, {
    ...options,
    headers: { authorization: `Bearer ${token}`, ...options.headers },
  });
}

describe('POST /v1/owners/:ownerId/portal-sessions', () => {
  it('answers 201 with a token, a portal url carrying it in the fragment, and an expiry an hour away', async () => {
    const before = Date.now();
    const created = await session(A);
    expect(created.ownerId).toBe(A);
    expect(created.token).toMatch(/^ps_[0-9a-z]+\.[A-Za-z0-9_-]{43}$/);
    expect(created.url).toBe(`http://localhost/portal#${created.token}`);
    const expiresInMs = Date.parse(created.expiresAt) - before;
    expect(expiresInMs).toBeGreaterThan(3590_000);
    expect(expiresInMs).toBeLessThan(3610_000);
  });

  it('stores a digest of the token, never the token or its secret', async () => {
    const created = await session(A);
    const [row] = await api.fleet.db.db
      .select()
      .from(portalSessions)
      .where(eq(portalSessions.id, created.id));
    const secret = created.token.split('.')[1]!;
    expect(row!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(secret);
  });

  it('takes an expiry from 5 minutes to 24 hours and refuses others naming the field', async () => {
    const short = await session(A, { expiresInSeconds: 300 });
    expect(Date.parse(short.expiresAt) - Date.now()).toBeLessThan(301_000);
    for (const expiresInSeconds of [299, 86_401, 1.5, '600']) {
      const res = await api.call('POST', `/v1/owners/${A}/portal-sessions`, {
        body: { expiresInSeconds },
      });
      expect(res.status, String(expiresInSeconds)).toBe(422);
      expect(errorSchema.parse(res.body).fields?.[0]?.path).toBe('expiresInSeconds');
    }
  });

  it('refuses an owner id outside the safe set', async () => {
    const res = await api.call('POST', '/v1/owners/a%20b/portal-sessions');
    expect(res.status).toBe(422);
    expect(errorSchema.parse(res.body).fields?.[0]?.path).toBe('ownerId');
  });

  it('is refused to a portal token, for its own owner as for another', async () => {
    for (const owner of [A, B]) {
      const res = await as(tokenA, 'POST', `/v1/owners/${owner}/portal-sessions`);
      expect(res.status).toBe(403);
      expect(errorSchema.parse(res.body).code).toBe('forbidden');
      expect((await as(tokenA, 'DELETE', `/v1/owners/${owner}/portal-sessions`)).status).toBe(403);
    }
  });
});

describe("a portal token sees and manages its owner's endpoints and messages", () => {
  it("lists only its owner's endpoints, and refuses to list another owner's", async () => {
    const list = endpointListSchema.parse((await as(tokenA, 'GET', '/v1/endpoints')).body);
    expect(list.data.map((e) => e.id)).toEqual([epA]);
    const other = await as(tokenA, 'GET', `/v1/endpoints?ownerId=${B}`);
    expect(other.status).toBe(403);
    expect(errorSchema.parse(other.body).fields?.[0]?.path).toBe('ownerId');
  });

  it('adds endpoints for its own owner only', async () => {
    const res = await as(tokenA, 'POST', '/v1/endpoints', { body: { url } });
    expect(res.status).toBe(201);
    const created = createdEndpointSchema.parse(res.body);
    expect(created.ownerId).toBe(A);
    expect(created.secret).toMatch(/^whsec_/);
    const elsewhere = await as(tokenA, 'POST', '/v1/endpoints', { body: { url, ownerId: B } });
    expect(elsewhere.status).toBe(403);
    expect(errorSchema.parse(elsewhere.body).fields?.[0]?.path).toBe('ownerId');
    expect(
      endpointListSchema.parse((await api.call('GET', `/v1/endpoints?ownerId=${B}`)).body).data,
    ).toHaveLength(1);
  });

  it('reads, edits, tests, rotates and deletes its own endpoints', async () => {
    const id = createdEndpointSchema.parse(
      (await as(tokenA, 'POST', '/v1/endpoints', { body: { url } })).body,
    ).id;
    expect((await as(tokenA, 'GET', `/v1/endpoints/${id}`)).status).toBe(200);
    const patched = await as(tokenA, 'PATCH', `/v1/endpoints/${id}`, {
      body: { description: 'mine', active: false },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ description: 'mine', active: false });
    expect(
      (await as(tokenA, 'PATCH', `/v1/endpoints/${id}`, { body: { active: true } })).status,
    ).toBe(200);
    expect((await as(tokenA, 'POST', `/v1/endpoints/${id}/test`)).status).toBe(202);
    expect((await as(tokenA, 'POST', `/v1/endpoints/${id}/rotate-secret`)).status).toBe(200);
    expect(
      (
        await as(tokenA, 'POST', `/v1/endpoints/${id}/recover`, {
          body: { since: new Date(Date.now() - 3600_000).toISOString() },
        })
      ).status,
    ).toBe(202);
    expect((await as(tokenA, 'DELETE', `/v1/endpoints/${id}`)).status).toBe(204);
  });

  it("lists only its owner's messages, and refuses to list another owner's", async () => {
    const list = messageListSchema.parse((await as(tokenA, 'GET', '/v1/messages')).body);
    expect(list.data.map((m) => m.id)).toContain(msgA);
    expect(list.data.map((m) => m.id)).not.toContain(msgB);
    expect(list.data.every((m) => m.ownerId === A)).toBe(true);
    const other = await as(tokenA, 'GET', `/v1/messages?ownerId=${B}`);
    expect(other.status).toBe(403);
    expect(errorSchema.parse(other.body).fields?.[0]?.path).toBe('ownerId');
  });

  it('reads and redelivers its own messages but cannot send', async () => {
    const read = await as(tokenA, 'GET', `/v1/messages/${msgA}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: msgA, ownerId: A });
    expect((await as(tokenA, 'POST', `/v1/messages/${msgA}/redeliver`)).status).toBe(202);
    const sendRes = await as(tokenA, 'POST', '/v1/messages', {
      body: { eventType: 'order.paid', payload: {}, ownerId: A },
    });
    expect(sendRes.status).toBe(403);
    expect(errorSchema.parse(sendRes.body).code).toBe('forbidden');
  });
});

describe("a portal token never reaches another owner's or ownerless resources", () => {
  /** The answer for an id that names nothing at all, with `id` in place of the made-up one. */
  async function missingAnswer(
    path: string,
    id: string,
    made: string,
    method: string,
    body?: unknown,
  ) {
    const res = await as(tokenA, method, path.replace(id, made), { body });
    return { status: res.status, text: res.text.replaceAll(made, id) };
  }

  it('answers exactly as for a missing endpoint, and changes nothing', async () => {
    const since = new Date(Date.now() - 3600_000).toISOString();
    const calls: [string, string, unknown?][] = [
      ['GET', ''],
      ['PATCH', '', { description: 'taken over', active: false }],
      ['DELETE', ''],
      ['POST', '/test'],
      ['POST', '/rotate-secret'],
      ['POST', '/recover', { since }],
    ];
    for (const id of [epB, epNone]) {
      const before = await api.call('GET', `/v1/endpoints/${id}`);
      for (const [method, suffix, body] of calls) {
        const path = `/v1/endpoints/${id}${suffix}`;
        const res = await as(tokenA, method, path, { body });
        const missing = await missingAnswer(path, id, 'ep_0000000000000000000000000', method, body);
        expect({ status: res.status, text: res.text }, `${method} ${path}`).toEqual(missing);
        expect(res.status).toBe(404);
      }
      const after = await api.call('GET', `/v1/endpoints/${id}`);
      expect(after.status).toBe(200);
      const { stats24h: _b, ...beforeView } = before.body;
      const { stats24h: _a, ...afterView } = after.body;
      expect(afterView).toEqual(beforeView);
    }
  });

  it('answers exactly as for a missing message, and redelivers nothing', async () => {
    const jobsBefore = await api.fleet.producer.deliveriesQueue.getJobCounts();
    for (const [method, suffix] of [
      ['GET', ''],
      ['POST', '/redeliver'],
    ] as const) {
      const path = `/v1/messages/${msgB}${suffix}`;
      const res = await as(tokenA, method, path);
      const missing = await missingAnswer(path, msgB, 'msg_0000000000000000000000000', method);
      expect({ status: res.status, text: res.text }).toEqual(missing);
      expect(res.status).toBe(404);
    }
    expect(await api.fleet.producer.deliveriesQueue.getJobCounts()).toEqual(jobsBefore);
  });
});

describe('tokens that are not (or no longer) good', () => {
  it('refuses an expired token with 401 {code, detail}', async () => {
    const created = await session(A, { expiresInSeconds: 300 });
    expect((await as(created.token, 'GET', '/v1/endpoints')).status).toBe(200);
    await api.fleet.db.db
      .update(portalSessions)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(portalSessions.id, created.id));
    const res = await as(created.token, 'GET', '/v1/endpoints');
    expect(res.status).toBe(401);
    expect(errorSchema.parse(res.body)).toMatchObject({ code: 'unauthorized' });
    expect(errorSchema.parse(res.body).detail).toContain('expired');
  });

  it('refuses forged tokens: a right session id with a wrong secret, an unknown id, a bare id', async () => {
    const created = await session(A);
    const [id] = created.token.split('.');
    const forged = [
      `${id}.${'A'.repeat(43)}`,
      `ps_0000000000000000000000000.${created.token.split('.')[1]!}`,
      id!,
      `${created.token}x`,
    ];
    for (const token of forged) {
      const res = await as(token, 'GET', '/v1/endpoints');
      expect(res.status, token).toBe(401);
      expect(errorSchema.parse(res.body).code).toBe('unauthorized');
    }
  });

  it("revokes every session of an owner at once, leaving other owners' alone", async () => {
    const first = await session(A);
    const second = await session(A);
    const ofB = await session(B);
    const res = await api.call('DELETE', `/v1/owners/${A}/portal-sessions`);
    expect(res.status).toBe(200);
    expect((res.body as { revoked: number }).revoked).toBeGreaterThanOrEqual(2);
    for (const { token } of [first, second]) {
      const refused = await as(token, 'GET', '/v1/endpoints');
      expect(refused.status).toBe(401);
      expect(errorSchema.parse(refused.body).detail).toContain('revoked');
    }
    expect((await as(ofB.token, 'GET', '/v1/endpoints')).status).toBe(200);
    tokenA = (await session(A)).token;
  });

  it('revokes one session by its id, and answers 404 for an id of another owner', async () => {
    const kept = await session(A);
    const revoked = await session(A);
    const wrongOwner = await api.call('DELETE', `/v1/owners/${B}/portal-sessions/${revoked.id}`);
    expect(wrongOwner.status).toBe(404);
    expect((await as(revoked.token, 'GET', '/v1/endpoints')).status).toBe(200);
    const res = await api.call('DELETE', `/v1/owners/${A}/portal-sessions/${revoked.id}`);
    expect(res.status).toBe(204);
    expect((await as(revoked.token, 'GET', '/v1/endpoints')).status).toBe(401);
    expect((await as(kept.token, 'GET', '/v1/endpoints')).status).toBe(200);
  });
});
