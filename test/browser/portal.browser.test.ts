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
});
