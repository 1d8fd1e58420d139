import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { refuseCrossSite, type CrossSiteOptions } from '../../src/dashboard/refuseCrossSite.js';

/** An app whose one route answers 204 when the guard lets a request through. */
function guarded(options?: CrossSiteOptions) {
  const app = new Hono();
  app.use('*', refuseCrossSite(options));
  app.all('/change', (c) => c.body(null, 204));
  return (method: string, headers: Record<string, string>) =>
    app.request('http://dashboard.test/change', { method, headers });
}

const SAME_SITE_CASES: [string, Record<string, string>][] = [
  ['Sec-Fetch-Site same-origin', { 'sec-fetch-site': 'same-origin' }],
  ['Sec-Fetch-Site none', { 'sec-fetch-site': 'none' }],
  ['an Origin naming this host', { origin: 'https://dashboard.test' }],
];
const CROSS_SITE_CASES: [string, Record<string, string>][] = [
  ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }],
  ['Sec-Fetch-Site same-site', { 'sec-fetch-site': 'same-site' }],
  ['an Origin naming another host', { origin: 'http://evil.example' }],
  ['an Origin on another port', { origin: 'http://dashboard.test:8080' }],
  ['an opaque Origin', { origin: 'null' }],
];

describe('refuseCrossSite', () => {
  it('lets reads through whatever their headers say', async () => {
    const request = guarded({ requireOrigin: true });
    for (const method of ['GET', 'HEAD']) {
      expect((await request(method, { 'sec-fetch-site': 'cross-site' })).status).toBe(204);
    }
  });

  it.each(CROSS_SITE_CASES)(
    'refuses a change with %s, with or without requireOrigin',
    async (_, h) => {
      for (const options of [{}, { requireOrigin: true }]) {
        const res = await guarded(options)('POST', h);
        expect(res.status).toBe(403);
        expect(await res.json()).toEqual({
          code: 'forbidden',
          detail: 'the dashboard refuses changes requested from another site',
        });
      }
    },
  );

  it.each(SAME_SITE_CASES)('lets through a change with %s', async (_, headers) => {
    const request = guarded();
    expect((await request('POST', headers)).status).toBe(204);
  });

  it('lets through a change without browser headers, as curl sends it, by default', async () => {
    expect((await guarded()('PUT', {})).status).toBe(204);
  });

  it('with requireOrigin, refuses a change that names no origin, or another in its Referer', async () => {
    const request = guarded({ requireOrigin: true });
    const neither = await request('POST', {});
    expect(neither.status).toBe(403);
    expect(await neither.json()).toMatchObject({
      detail: expect.stringContaining('neither an Origin nor a Referer'),
    });
    const referer = await request('POST', { referer: 'http://evil.example/page' });
    expect(referer.status).toBe(403);
    expect(await referer.json()).toMatchObject({
      detail: expect.stringContaining('(Referer), not from this dashboard (dashboard.test)'),
    });
  });

  it('with requireOrigin, lets through a change from this host by Origin or by Referer', async () => {
    const request = guarded({ requireOrigin: true });
    expect((await request('POST', { origin: 'http://dashboard.test' })).status).toBe(204);
    expect((await request('POST', { referer: 'http://dashboard.test/admin/x' })).status).toBe(204);
  });
});
