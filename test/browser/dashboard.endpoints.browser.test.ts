import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { startApiServer, type RunningApiServer } from '../../src/api/server.js';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { ADMIN, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { ok, startReceiver, type Receiver, type Responder } from '../helpers/receiver.js';

const fail500: Responder = (_request, _index, res) => {
  res.writeHead(500).end();
};

// A real worker with the test fleet's short retry schedule (20 ms x 3), so a delivery to a
// receiver answering 500 fails for good at once. The circuit breaker is off: replayed deliveries
// go out as soon as the button is pressed.
let api: ApiHarness;
let server: RunningApiServer;
let browser: Browser;
let receiver: Receiver;
let base: string;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_CIRCUIT_FAILURES: '0' });
  server = await startApiServer(api.deps, { port: 0, hostname: '127.0.0.1' });
  base = `http://127.0.0.1:${server.port}`;
  receiver = await startReceiver(fail500);
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await api?.close();
  await receiver?.close();
});

describe('the endpoint health page at /admin/endpoints', () => {
  it('leads an operator from a failing endpoint to replaying its deliveries once it is fixed', async () => {
    const { db } = api.fleet.db;
    const endpoint = await insertEndpoint(db, {
      url: receiver.url,
      description: 'Orders service <staging>',
    });
    await insertEndpoint(db, { url: 'http://127.0.0.1:9/idle', description: 'Idle endpoint' });
    api.fleet.startWorker();
    const messageIds: string[] = [];
    for (let n = 0; n < 3; n++) {
      const sent = await api.fleet.producer.send({
        eventType: 'order.created',
        payload: { order: n },
        endpointIds: [endpoint.id],
      });
      messageIds.push(sent.id);
    }
    const jobIds = messageIds.map((id) => deliveryJobId(id, endpoint.id));
    for (const jobId of jobIds)
      expect((await api.fleet.waitForDelivery(jobId)).state).toBe('failed');
    await api.fleet.flushRecorders();

    const context = await browser.newContext({
      httpCredentials: { username: ADMIN.user, password: ADMIN.password },
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await context.newPage();
      const response = await page.goto(`${base}/admin/endpoints`);
      expect(response?.status()).toBe(200);
      expect(await page.locator('header a[href="/admin/queues"]').innerText()).toBe(
        'Queues (Bull Board)',
      );

      // Narrow the list to failing endpoints with the form, as an operator would.
      await page.selectOption('select[name="state"]', 'failing');
      await page.getByRole('button', { name: 'Show' }).click();
      await page.waitForURL(/state=failing/);
      const rows = page.locator('tbody tr');
      expect(await rows.count()).toBe(1);
      const row = page.locator(`tr[data-endpoint="${endpoint.id}"]`);
      // Three deliveries, four attempts each (first try and three retries).
      expect(await row.locator('[data-col="consecutiveFailures"]').innerText()).toBe('12');
      expect(await row.locator('[data-col="lastSuccess"]').innerText()).toBe('never');
      expect(await row.locator('[data-col="successRate"]').innerText()).toBe('0 %');
      expect(await row.innerText()).toContain('Orders service <staging>');
      await page.screenshot({
        path: new URL('endpoints-list.png', ARTIFACTS).pathname,
        fullPage: true,
      });

      await row.getByRole('link', { name: endpoint.id }).click();
      await page.waitForURL(`${base}/admin/endpoints/${endpoint.id}`);
      const failed = page.locator('table[data-table="failed"] tbody tr');
      expect(await failed.count()).toBe(3);

      // The receiver is fixed; replay what failed in the last hour.
      receiver.respondWith(ok);
      const received = receiver.requests.length + 3;
      const completed = api.fleet.nextCompletions(jobIds);
      await page.selectOption('select[name="since"]', '1h');
      await page.getByRole('button', { name: 'Replay' }).click();
      await page.waitForURL(/done=replayed/);
      expect(await page.locator('.flash').innerText()).toBe(
        'Replaying 3 failed deliveries from the last hour: 3 retried, 0 enqueued again, 0 already pending.',
      );

      const requests = await receiver.waitForRequests(received);
      expect(
        requests
          .slice(-3)
          .map((request) => request.headers['webhook-id'])
          .sort(),
      ).toEqual([...messageIds].sort());
      await completed;
      await api.fleet.flushRecorders();

      await page.reload();
      expect(await page.locator('[data-fact="lastSuccess"]').innerText()).toBe('just now');
      expect(await page.locator('[data-fact="consecutiveFailures"]').innerText()).toBe('0');
      expect(await page.locator('main').innerText()).toContain('No failed deliveries.');
      await page.screenshot({
        path: new URL('endpoints-detail.png', ARTIFACTS).pathname,
        fullPage: true,
      });

      // Back on the list, the endpoint is no longer failing.
      await page.getByRole('link', { name: '← All endpoints' }).click();
      const listed = page.locator(`tr[data-endpoint="${endpoint.id}"]`);
      expect(await listed.locator('[data-col="lastSuccess"]').innerText()).toBe('just now');
      expect(await listed.locator('[data-col="consecutiveFailures"]').innerText()).toBe('0');
    } finally {
      await context.close();
    }
  });
});
