import type { Browser } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalSessionSchema } from '../../src/api/contracts.js';
import { startApiServer, type RunningApiServer } from '../../src/api/server.js';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { API_KEY, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

// A customer of the platform, org_a, opens the portal link the platform made for it, adds an
// endpoint, and watches a delivery to it arrive (a real worker, a real receiver).
let api: ApiHarness;
let server: RunningApiServer;
let browser: Browser;
let receiver: Receiver;
let base: string;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_RECORDER_FLUSH_MS: '25' });
  api.fleet.startWorker();
  server = await startApiServer(api.deps, { port: 0, hostname: '127.0.0.1' });
  base = `http://127.0.0.1:${server.port}`;
  receiver = await startReceiver();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await api?.close();
  await receiver?.close();
});

async function portalLink(ownerId: string) {
  const res = await fetch(`${base}/v1/owners/${ownerId}/portal-sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  expect(res.status).toBe(201);
  return portalSessionSchema.parse(await res.json());
}

describe('the customer portal', () => {
  it('lets a customer add an endpoint from the link, see its secret once, and see a delivery arrive', async () => {
    const other = await insertEndpoint(api.fleet.db.db, {
      url: 'http://127.0.0.1:9/someone-else',
      ownerId: 'org_b',
    });
    const session = await portalLink('org_a');
    expect(session.url).toBe(`${base}/portal#${session.token}`);

    const context = await browser.newContext();
    const page = await context.newPage();
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(session.url);
    await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();
    // The token left the address bar and never went to the server in a URL.
    expect(page.url()).toBe(`${base}/portal`);
    expect(requested.every((u) => !u.includes(session.token.split('.')[1]!))).toBe(true);
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'hookfleet_portal', httpOnly: true, path: '/portal' });
    expect(await page.content()).not.toContain(other.id);

    await page.getByLabel('URL').fill(receiver.url);
    await page.getByLabel('Event types').fill('order.*');
    await page.getByLabel('Description').fill('Orders');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = await page.locator('#new-secret').textContent();
    expect(secret).toMatch(/^whsec_/);
    const endpointId = (await page.locator('[data-secret]').getAttribute('data-secret'))!;

    const sent = await api.fleet.producer.send({
      ownerId: 'org_a',
      eventType: 'order.paid',
      payload: { order: 7 },
    });
    expect(sent.endpointIds).toEqual([endpointId]);
    const [request] = await receiver.waitForRequests(1);
    expect(() =>
      new Webhook(secret!).verify(request!.body, {
        'webhook-id': String(request!.headers['webhook-id']),
        'webhook-timestamp': String(request!.headers['webhook-timestamp']),
        'webhook-signature': String(request!.headers['webhook-signature']),
      }),
    ).not.toThrow();
    // The worker records the attempt after the receiver has answered: wait for it.
    await expect
      .poll(async () => {
        await api.fleet.flushRecorders();
        return (await api.call('GET', `/v1/endpoints/${endpointId}`)).body.lastSuccessAt;
      })
      .not.toBeNull();

    await page.goto(`${base}/portal`);
    const attempt = page.locator(`tr[data-attempt-message="${sent.id}"]`);
    expect(await attempt.count()).toBe(1);
    const row = page.locator(`tr[data-endpoint="${endpointId}"]`);
    expect(await row.locator('[data-col="lastSuccess"]').textContent()).toContain('just now');
    expect(await row.locator('[data-col="successRate"]').textContent()).toContain('100');
    expect(await attempt.locator('[data-col="outcome"]').textContent()).toBe('succeeded');
    expect(await page.locator(`tr[data-message="${sent.id}"]`).count()).toBe(1);
    expect(await page.content()).not.toContain(secret!);
    await page.screenshot({ path: new URL('portal.png', ARTIFACTS).pathname, fullPage: true });

    // Revoked by the platform: the next page load is refused.
    await fetch(`${base}/v1/owners/org_a/portal-sessions`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const refused = await page.goto(`${base}/portal`);
    expect(refused?.status()).toBe(401);
    await context.close();
  }, 60_000);

  it("lets a customer change an endpoint's payload format, headers, retry schedule and rate limit, never showing a header value", async () => {
    const endpoint = await insertEndpoint(api.fleet.db.db, {
      url: receiver.url,
      ownerId: 'org_c',
      eventTypes: ['order.*'],
      headers: { 'X-Api-Key': 'first-key-value', 'X-Old': 'old-value' },
    });
    const session = await portalLink('org_c');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(session.url);
    await page.getByRole('heading', { name: 'Webhook endpoints' }).waitFor();
    await page.locator(`tr[data-endpoint="${endpoint.id}"]`).getByRole('link').click();
    await page.getByRole('heading', { name: endpoint.url }).waitFor();
    expect(await page.content()).not.toContain('first-key-value');

    // A bad value is refused with the reason, as the form's other fields are.
    await page.getByLabel('Rate limit (requests per second)').fill('lots');
    await page.getByRole('button', { name: 'Save' }).click();
    expect(await page.locator('.flash.error').textContent()).toContain(
      'rateLimitPerSecond: expected a whole number of requests per second from 1 to 10000',
    );

    await page.getByLabel('Payload').selectOption('raw');
    await page.getByLabel('Rate limit (requests per second)').fill('50');
    await page.getByLabel('Retry schedule').fill('5s, 1m');
    await page.getByLabel('New value of X-Api-Key').fill('second-key-value');
    await page.getByLabel('Remove X-Old').check();
    await page.getByLabel('New header name').fill('X-Region');
    await page.getByLabel('New header value').fill('eu-west');
    await page.getByRole('button', { name: 'Save' }).click();
    expect(await page.locator('.flash.ok').textContent()).toBe('Saved.');
    const content = await page.content();
    for (const value of ['first-key-value', 'second-key-value', 'eu-west', 'old-value'])
      expect(content).not.toContain(value);
    expect(await page.locator('tr[data-header] code').allTextContents()).toEqual([
      'X-Api-Key',
      'X-Region',
    ]);
    expect(await page.getByLabel('Retry schedule').inputValue()).toBe('5s, 1m');
    expect(await page.getByLabel('Rate limit (requests per second)').inputValue()).toBe('50');
    await page.screenshot({
      path: new URL('portal-settings.png', ARTIFACTS).pathname,
      fullPage: true,
    });

    // The next delivery carries what was saved: the raw payload and the headers.
    const seen = receiver.requests.length;
    await api.fleet.producer.send({
      ownerId: 'org_c',
      eventType: 'order.shipped',
      payload: { order: 8 },
    });
    const request = (await receiver.waitForRequests(seen + 1))[seen]!;
    expect(request.body).toBe('{"order":8}');
    expect(request.headers).toMatchObject({
      'x-api-key': 'second-key-value',
      'x-region': 'eu-west',
    });
    expect(request.headers).not.toHaveProperty('x-old');
    await context.close();
  }, 60_000);
});
