import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { startApiServer, type RunningApiServer } from '../../src/api/server.js';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { ADMIN, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

// No worker runs here: the jobs stay waiting, so the board has counts to show.
let api: ApiHarness;
let server: RunningApiServer;
let browser: Browser;
let base: string;
beforeAll(async () => {
  api = await createApiHarness();
  server = await startApiServer(api.deps, { port: 0, hostname: '127.0.0.1' });
  base = `http://127.0.0.1:${server.port}`;
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await api?.close();
});

describe('Bull Board at /admin/queues', () => {
  it('does not let a browser in with a wrong password', async () => {
    const context = await browser.newContext({
      httpCredentials: { username: ADMIN.user, password: 'wrong' },
    });
    try {
      const page = await context.newPage();
      const response = await page.goto(`${base}/admin/queues`);
      expect(response?.status()).toBe(401);
      expect(await page.locator('body').innerText()).not.toContain('deliveries');
    } finally {
      await context.close();
    }
  });

  it('shows the messages queue with its job counts after a basic-auth login', async () => {
    const endpoint = await insertEndpoint(api.fleet.db.db, { url: 'http://127.0.0.1:9/hook' });
    const messageIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = await api.fleet.producer.send({
        eventType: 'board.test',
        payload: { i },
        endpointIds: [endpoint.id],
      });
      messageIds.push(sent.id);
    }
    const context = await browser.newContext({
      httpCredentials: { username: ADMIN.user, password: ADMIN.password },
      viewport: { width: 1280, height: 800 },
    });
    try {
      const page = await context.newPage();
      const response = await page.goto(`${base}/admin/queues`);
      expect(response?.status()).toBe(200);
      // The overview has a card per queue with its job total, and a tab per state with its count.
      const body = page.locator('body');
      await expect
        .poll(() => body.innerText(), { timeout: 15_000 })
        .toMatch(/messages[\s\S]{0,40}?\b3 Jobs/);
      const overview = await body.innerText();
      expect(overview).toMatch(/deliveries[\s\S]{0,40}?\b0 Jobs/);
      expect(overview).toMatch(/maintenance[\s\S]{0,40}?\b0 Jobs/);
      expect(overview).toMatch(/WAITING\s+3\b/);
      await page.screenshot({ path: new URL('dashboard-overview.png', ARTIFACTS).pathname });

      // The queue's own page lists the waiting jobs: one fan-out per message, named by the message.
      await page.getByText('messages', { exact: true }).first().click();
      await page.waitForURL(/\/admin\/queues\/queue\/messages/);
      await expect.poll(() => body.innerText(), { timeout: 15_000 }).toContain(messageIds[0]!);
      expect(await body.innerText()).toContain('fan-out');
      await page.screenshot({ path: new URL('dashboard-messages.png', ARTIFACTS).pathname });
    } finally {
      await context.close();
    }
  });
});
