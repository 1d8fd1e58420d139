import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalSessionSchema } from '../../src/api/contracts.js';
import { createApp } from '../../src/api/app.js';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { loadConfig } from '../../src/config.js';
import { callApp, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

let api: ApiHarness;
let cookieA: string;
let epA: string;
let epB: string;
let epNone: string;
const SAME_ORIGIN = { host: 'localhost', origin: 'http://localhost' };

beforeAll(async () => {
  api = await createApiHarness();
  const { db } = api.fleet.db;
  epA = (await insertEndpoint(db, { url: 'http://127.0.0.1:9/a', ownerId: 'org_a' })).id;
  epB = (await insertEndpoint(db, { url: 'http://127.0.0.1:9/secret-b', ownerId: 'org_b' })).id;
  epNone = (await insertEndpoint(db, { url: 'http://127.0.0.1:9/platform' })).id;
  cookieA = await signIn('org_a');
});
afterAll(async () => {
  await api.close();
});

async function signIn(ownerId: string): Promise<string> {
  const created = portalSessionSchema.parse(
    (await api.call('POST', `/v1/owners/${ownerId}/portal-sessions`)).body,
  );
  const res = await callApp(api.app, 'POST', '/portal/session', {
    anonymous: true,
    body: { token: created.token },
    headers: SAME_ORIGIN,
  });
  expect(res.status).toBe(204);
  const cookie = res.headers.get('set-cookie')!;
  expect(cookie).toMatch(
    /^hookfleet_portal=ps_[^;]+; Path=\/portal; Max-Age=3[56]\d\d; HttpOnly; SameSite=Strict$/,
  );
  return cookie.split(';')[0]!;
}

function portal(
  method: string,
  path: string,
  form?: Record<string, string> | [string, string][],
  headers = SAME_ORIGIN,
) {
  return callApp(api.app, method, path, {
    anonymous: true,
    ...(form && { body: new URLSearchParams(form).toString() }),
    headers: {
      cookie: cookieA,
      ...(form && { 'content-type': 'application/x-www-form-urlencoded' }),
      ...headers,
    },
  });
}

describe('the customer portal page', () => {
  it("shows the session owner's endpoints and none of another owner's or ownerless ones", async () => {
    const res = await portal('GET', '/portal');
    expect(res.status).toBe(200);
    expect(res.text).toContain(epA);
    expect(res.text).not.toContain(epB);
    expect(res.text).not.toContain(epNone);
  });

  it('shows since when an endpoint has been failing, and when it will be disabled', async () => {
    const { db } = api.fleet.db;
    const failing = await insertEndpoint(db, {
      url: 'http://127.0.0.1:9/failing',
      ownerId: 'org_a',
      failingDisableAfterHours: 10,
    });
    await api.fleet.db.sql`
      update endpoints set failing_since = now() - interval '210 minutes' where id = ${failing.id}`;

    const res = await portal('GET', '/portal');

    const row = new RegExp(`<tr data-endpoint="${failing.id}">([\\s\\S]*?)</tr>`).exec(
      res.text,
    )![1]!;
    const cell = /<td data-col="failingSince">([\s\S]*?)<\/td>/.exec(row)![1]!;
    const text = cell
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    expect(text).toBe('3 hours ago disabled in 6 hours');
    const healthy = new RegExp(`<tr data-endpoint="${epA}">([\\s\\S]*?)</tr>`).exec(res.text)![1]!;
    expect(healthy).toMatch(/<td data-col="failingSince">\s*<span class="muted">—<\/span>/);
  });

  it("answers another owner's or an ownerless endpoint as a missing one, and changes nothing", async () => {
    for (const id of [epB, epNone]) {
      const missing = await portal('GET', '/portal/endpoints/ep_0000000000000000000000000');
      const read = await portal('GET', `/portal/endpoints/${id}`);
      expect(read.status).toBe(404);
      expect(read.text).toBe(missing.text);
      for (const action of ['disable', 'replay']) {
        expect((await portal('POST', `/portal/endpoints/${id}/${action}`, {})).status).toBe(404);
      }
      const edit = await portal('POST', `/portal/endpoints/${id}`, { url: 'http://127.0.0.1:9/x' });
      expect(edit.status).toBe(404);
      const row = await findEndpoint(api.fleet.db.db, id);
      expect(row).toMatchObject({ active: true });
      expect(row!.url).not.toBe('http://127.0.0.1:9/x');
    }
  });

  it('adds an endpoint for the session owner and shows its secret once', async () => {
    const res = await portal('POST', '/portal/endpoints', {
      url: 'http://127.0.0.1:9/added',
      eventTypes: 'order.*, invoice.paid',
      description: 'added here',
    });
    expect(res.status).toBe(200);
    const id = /data-secret="(ep_[0-9a-z]+)"/.exec(res.text)![1]!;
    const row = (await findEndpoint(api.fleet.db.db, id))!;
    expect(row).toMatchObject({ ownerId: 'org_a', eventTypes: ['order.*', 'invoice.paid'] });
    expect(res.text).toContain(row.secret);
    expect((await portal('GET', '/portal')).text).not.toContain(row.secret);
  });

  it('refuses bad input with 422 and says what is wrong', async () => {
    const res = await portal('POST', '/portal/endpoints', { url: 'ftp://example.com/x' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('expected an http:// or https:// URL');
  });

  it('refuses POSTs from another site, and visitors without a live session', async () => {
    const crossSite = await portal(
      'POST',
      `/portal/endpoints/${epA}/disable`,
      {},
      {
        host: 'localhost',
        origin: 'https://evil.example',
      },
    );
    expect(crossSite.status).toBe(403);
    const anonymous = await callApp(api.app, 'GET', '/portal', { anonymous: true });
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).not.toContain(epA);
    const forged = await callApp(api.app, 'GET', '/portal', {
      anonymous: true,
      headers: { cookie: `hookfleet_portal=${cookieA.split('=')[1]!.slice(0, -2)}xx` },
    });
    expect(forged.status).toBe(401);
    const badToken = await callApp(api.app, 'POST', '/portal/session', {
      anonymous: true,
      body: { token: 'ps_0000.nope' },
      headers: SAME_ORIGIN,
    });
    expect(badToken.status).toBe(401);
    expect(badToken.body).toMatchObject({ code: 'unauthorized' });
  });

  describe("an endpoint's delivery settings", () => {
    /** The edit form as the page sends it: the endpoint's current values, changed by `fields`. */
    async function save(id: string, fields: [string, string][]) {
      const row = (await findEndpoint(api.fleet.db.db, id))!;
      const form = new Map<string, string>([
        ['url', row.url],
        ['eventTypes', row.eventTypes.join(', ')],
        ['description', row.description],
        ['payloadFormat', row.payloadFormat],
        ['rateLimitPerSecond', String(row.rateLimitPerSecond ?? '')],
        ['newHeaderName', ''],
        ['newHeaderValue', ''],
      ]);
      const boxes = fields.filter(([name]) => name === 'removeHeader');
      for (const [name, value] of fields) if (name !== 'removeHeader') form.set(name, value);
      return portal('POST', `/portal/endpoints/${id}`, [...form, ...boxes]);
    }

    async function endpointWithHeaders() {
      return insertEndpoint(api.fleet.db.db, {
        url: 'http://127.0.0.1:9/settings',
        ownerId: 'org_a',
        headers: { 'X-Api-Key': 'old-key-value', 'X-Team': 'billing-team', 'X-Gone': 'gone-value' },
      });
    }

    it('shows them, never a header value, and saves a change as PATCH /v1/endpoints/:id would', async () => {
      const endpoint = await endpointWithHeaders();
      const page = await portal('GET', `/portal/endpoints/${endpoint.id}`);
      expect(page.status).toBe(200);
      for (const name of ['X-Api-Key', 'X-Team', 'X-Gone']) {
        expect(page.text).toContain(`data-header="${name}"`);
      }
      for (const value of ['old-key-value', 'billing-team', 'gone-value'])
        expect(page.text).not.toContain(value);
      expect(page.text).toMatch(/name="retrySchedule"\s+placeholder="default: [^"]+"\s+value=""/);

      const saved = await save(endpoint.id, [
        ['payloadFormat', 'raw'],
        ['rateLimitPerSecond', '25'],
        ['retrySchedule', '10s, 1m,2h'],
        ['header:X-Api-Key', 'new-key-value'],
        ['header:X-Team', ''],
        ['removeHeader', 'X-Gone'],
        ['newHeaderName', 'X-Region'],
        ['newHeaderValue', 'eu-west'],
      ]);
      expect(saved.status, saved.text).toBe(303);
      expect(saved.headers.get('location')).toBe(`/portal/endpoints/${endpoint.id}?done=saved`);
      expect(await findEndpoint(api.fleet.db.db, endpoint.id)).toMatchObject({
        payloadFormat: 'raw',
        rateLimitPerSecond: 25,
        retryScheduleMs: [10_000, 60_000, 7_200_000],
        headers: { 'X-Api-Key': 'new-key-value', 'X-Team': 'billing-team', 'X-Region': 'eu-west' },
      });

      const shown = await portal('GET', `/portal/endpoints/${endpoint.id}?done=saved`);
      expect(shown.text).toMatch(/<option value="raw"\s+selected>/);
      expect(shown.text).toMatch(/name="rateLimitPerSecond"[^>]*value="25"/);
      expect(shown.text).toMatch(/name="retrySchedule"[^>]*value="10s, 1m, 2h"/);
      expect(shown.text).not.toContain('data-header="X-Gone"');
      for (const value of ['new-key-value', 'billing-team', 'eu-west'])
        expect(shown.text).not.toContain(value);

      const restored = await save(endpoint.id, [
        ['rateLimitPerSecond', ''],
        ['retrySchedule', ''],
      ]);
      expect(restored.status).toBe(303);
      expect(await findEndpoint(api.fleet.db.db, endpoint.id)).toMatchObject({
        rateLimitPerSecond: null,
        retryScheduleMs: null,
        headers: { 'X-Api-Key': 'new-key-value', 'X-Team': 'billing-team', 'X-Region': 'eu-west' },
      });
    });

    it.each([
      [
        [['rateLimitPerSecond', 'lots']],
        'rateLimitPerSecond: expected a whole number of requests per second from 1 to 10000',
      ],
      [[['rateLimitPerSecond', '0']], 'rateLimitPerSecond: expected a whole number'],
      [[['retrySchedule', '5s, forever']], 'retrySchedule.1: expected a delay from 1s to 24h'],
      [
        [['retrySchedule', Array(17).fill('24h').join(',')]],
        'retrySchedule: the schedule lasts 17d',
      ],
      [[['payloadFormat', 'xml']], 'payloadFormat:'],
      [
        [
          ['newHeaderName', 'Connection'],
          ['newHeaderValue', 'close'],
        ],
        'headers.Connection: connection is set by the HTTP client',
      ],
      [
        [
          ['newHeaderName', 'X-Key'],
          ['newHeaderValue', 'bad\nvalue'],
        ],
        'headers.X-Key: values are visible ASCII',
      ],
      [[['newHeaderValue', 'nameless']], 'headers: a new header needs a name'],
      [[['header:X-Api-Key', '********']], 'headers.X-Api-Key: ******** is how values are shown'],
    ] as [[string, string][], string][])(
      'refuses %j with 422, the reason, and no change',
      async (fields, reason) => {
        const endpoint = await endpointWithHeaders();
        const before = await findEndpoint(api.fleet.db.db, endpoint.id);
        const res = await save(endpoint.id, [['rateLimitPerSecond', '5'], ...fields]);
        expect(res.status).toBe(422);
        expect(res.text).toMatch(/<p class="flash error" role="status">/);
        expect(res.text).toContain(reason.replace(/"/g, '&quot;'));
        expect(res.text).not.toContain('old-key-value');
        expect(await findEndpoint(api.fleet.db.db, endpoint.id)).toEqual(before);
      },
    );

    it('leaves the settings a form does not send alone, and takes a header value of 8 KiB less its name', async () => {
      const endpoint = await insertEndpoint(api.fleet.db.db, {
        url: 'http://127.0.0.1:9/kept',
        ownerId: 'org_a',
        payloadFormat: 'raw',
        rateLimitPerSecond: 9,
        retryScheduleMs: [5_000],
        headers: { 'X-Kept': 'kept-value' },
      });
      const plain = await portal('POST', `/portal/endpoints/${endpoint.id}`, {
        url: 'http://127.0.0.1:9/kept-renamed',
        eventTypes: '',
        description: 'only the basics',
      });
      expect(plain.status).toBe(303);
      expect(await findEndpoint(api.fleet.db.db, endpoint.id)).toMatchObject({
        url: 'http://127.0.0.1:9/kept-renamed',
        payloadFormat: 'raw',
        rateLimitPerSecond: 9,
        retryScheduleMs: [5_000],
        headers: { 'X-Kept': 'kept-value' },
      });

      // 8192 bytes of headers in all, counted as `name: value\r\n`.
      const value = 'k'.repeat(8192 - 'X-Kept: kept-value\r\n'.length - 'X-Big: \r\n'.length);
      const big = await save(endpoint.id, [
        ['newHeaderName', 'X-Big'],
        ['newHeaderValue', value],
      ]);
      expect(big.status, big.text.slice(0, 200)).toBe(303);
      expect((await findEndpoint(api.fleet.db.db, endpoint.id))!.headers['X-Big']).toBe(value);

      const tooBig = await save(endpoint.id, [['description', 'd'.repeat(20_000)]]);
      expect(tooBig.status).toBe(413);
      expect(tooBig.body).toMatchObject({ code: 'payload_too_large' });
    });

    it('checks the headers after the change as a whole: at most 20', async () => {
      const headers = Object.fromEntries(
        Array.from({ length: 20 }, (_, n) => [`X-H${n}`, 'v']),
      ) as Record<string, string>;
      const { id } = await insertEndpoint(api.fleet.db.db, {
        url: 'http://127.0.0.1:9/many',
        ownerId: 'org_a',
        headers,
      });
      const refused = await save(id, [
        ['newHeaderName', 'X-More'],
        ['newHeaderValue', 'v'],
      ]);
      expect(refused.status).toBe(422);
      expect(refused.text).toContain('headers: at most 20 headers (got 21)');
      const swapped = await save(id, [
        ['removeHeader', 'X-H0'],
        ['newHeaderName', 'X-More'],
        ['newHeaderValue', 'v'],
      ]);
      expect(swapped.status).toBe(303);
      expect(Object.keys((await findEndpoint(api.fleet.db.db, id))!.headers)).toHaveLength(20);
    });
  });

  it('refuses to be framed unless HOOKFLEET_PORTAL_FRAME_ANCESTORS names the embedding origin', async () => {
    const closed = await portal('GET', '/portal');
    expect(closed.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(closed.headers.get('x-frame-options')).toBe('DENY');
    const config = loadConfig({
      ...process.env,
      DATABASE_URL: api.fleet.config.databaseUrl!,
      HOOKFLEET_PORTAL_FRAME_ANCESTORS: 'https://app.example.com, https://*.example.org',
    });
    const embeddable = createApp({ ...api.deps, config });
    const res = await callApp(embeddable, 'GET', '/portal', {
      anonymous: true,
      headers: { cookie: cookieA },
    });
    expect(res.headers.get('content-security-policy')).toContain(
      'frame-ancestors https://app.example.com https://*.example.org;',
    );
    expect(res.headers.get('x-frame-options')).toBeNull();
    expect(() =>
      loadConfig({ HOOKFLEET_PORTAL_FRAME_ANCESTORS: 'https://a.example.com/path' }),
    ).toThrow(/HOOKFLEET_PORTAL_FRAME_ANCESTORS/);
  });
});
