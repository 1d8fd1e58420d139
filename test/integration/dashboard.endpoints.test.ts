import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { attempts, endpoints, messages } from '../../src/db/schema.js';
import { newId } from '../../src/ids.js';
import { deliveryJobId, messageJobId } from '../../src/jobs.js';
import { findMessage } from '../../src/db/messages.js';
import { endpointHealthSchema } from '../../src/api/contracts.js';
import { createApp } from '../../src/api/app.js';
import { ADMIN, callApp, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { ok, startReceiver, type Responder } from '../helpers/receiver.js';

// One harness for the file; each test makes endpoints of its own, with a token in their URL or
// description so searches and assertions see only them. The circuit breaker is off so that
// replayed deliveries are attempted at once (its state is shown through `circuitStates`).
let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_CIRCUIT_FAILURES: '0' });
});
afterAll(async () => {
  await api.close();
});

const DAY_MS = 86_400_000;
const BASIC = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;
/** What a browser on the dashboard's own page sends with a form POST. */
const SAME_ORIGIN = { host: 'localhost', origin: 'http://localhost' };

function get(path: string, app = api.app) {
  return callApp(app, 'GET', path, { anonymous: true, headers: { authorization: BASIC } });
}

function post(
  path: string,
  form: Record<string, string> = {},
  headers: Record<string, string> = SAME_ORIGIN,
) {
  return callApp(api.app, 'POST', path, {
    anonymous: true,
    body: new URLSearchParams(form).toString(),
    headers: {
      authorization: BASIC,
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
    },
  });
}

/** The list row of one endpoint (throws when it is not listed). */
function rowOf(html: string, id: string): string {
  const match = new RegExp(`<tr data-endpoint="${id}">[\\s\\S]*?</tr>`).exec(html);
  if (!match) throw new Error(`${id} is not listed`);
  return match[0];
}

/** The text of one cell of a list row, tags stripped. */
function cell(row: string, column: string): string {
  const match = new RegExp(`<td data-col="${column}"[^>]*>([\\s\\S]*?)</td>`).exec(row);
  return textOf(match?.[1] ?? '');
}

/** The text of one fact of the detail view. */
function fact(html: string, name: string): string {
  const match = new RegExp(`<dd data-fact="${name}">([\\s\\S]*?)</dd>`).exec(html);
  return textOf(match?.[1] ?? '');
}

function textOf(html: string): string {
  return html
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function token(): string {
  return Math.random().toString(36).slice(2, 10);
}

async function makeEndpoint(
  fields: Partial<typeof endpoints.$inferInsert> & { url?: string } = {},
): Promise<string> {
  const { url = `http://127.0.0.1:9/${token()}`, ...rest } = fields;
  const row = await insertEndpoint(api.fleet.db.db, { url });
  if (Object.keys(rest).length > 0)
    await api.fleet.db.db.update(endpoints).set(rest).where(eq(endpoints.id, row.id));
  return row.id;
}

/** An attempt row as a worker's success recorder writes it, with a message row to go with it. */
async function recordAttempt(
  endpointId: string,
  fields: { agoMs: number; outcome: string; durationMs?: number; statusCode?: number },
): Promise<string> {
  const messageId = newId('msg');
  await api.fleet.db.db
    .insert(messages)
    .values({ id: messageId, eventType: 'page.test', payload: {}, endpointIds: [endpointId] });
  await api.fleet.db.db.insert(attempts).values({
    messageId,
    endpointId,
    attemptNumber: 1,
    attemptedAt: new Date(Date.now() - fields.agoMs),
    outcome: fields.outcome,
    statusCode: fields.statusCode ?? (fields.outcome === 'succeeded' ? 200 : 500),
    durationMs: fields.durationMs ?? 10,
    error: fields.outcome === 'succeeded' ? null : 'receiver answered 500',
  });
  return messageId;
}

async function endpointRow(id: string) {
  const [row] = await api.fleet.db.db.select().from(endpoints).where(eq(endpoints.id, id));
  return row!;
}

describe('GET /admin/endpoints', () => {
  it('answers 401 with a basic-auth challenge without the admin credentials', async () => {
    for (const path of ['/admin/endpoints', `/admin/endpoints/${await makeEndpoint()}`]) {
      const res = await callApp(api.app, 'GET', path, { anonymous: true });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    }
    const wrong = `Basic ${Buffer.from(`${ADMIN.user}:nope`).toString('base64')}`;
    const res = await callApp(api.app, 'GET', '/admin/endpoints', {
      anonymous: true,
      headers: { authorization: wrong },
    });
    expect(res.status).toBe(401);
  });

  it('lists each endpoint with its state, last success, 24 h statistics, failures and stale deadline', async () => {
    const now = Date.now();
    const tag = token();
    // Created 10 days ago, last success 3 days and an hour ago, threshold 30 days: the stale
    // clock runs from the success, and 26 whole days are left.
    const healthy = await makeEndpoint({
      description: `healthy ${tag}`,
      createdAt: new Date(now - 10 * DAY_MS),
      lastSuccessAt: new Date(now - 3 * DAY_MS - 3_600_000),
      staleAfterDays: 30,
    });
    for (const [outcome, durationMs] of [
      ['succeeded', 100],
      ['succeeded', 200],
      ['succeeded', 300],
      ['failed', 400],
    ] as const) {
      await recordAttempt(healthy, { agoMs: 3_600_000, outcome, durationMs });
    }
    await recordAttempt(healthy, { agoMs: 2 * DAY_MS, outcome: 'failed', durationMs: 9000 }); // outside 24 h
    // Failing for 70 of its 120 hours: past half, so marked as warned, disabled in 50 hours.
    const failing = await makeEndpoint({
      description: `failing ${tag}`,
      consecutiveFailures: 4,
      failingSince: new Date(now - 70 * 3_600_000),
    });
    const stale = await makeEndpoint({ description: `stale ${tag}` });
    await setEndpointActive(api.fleet.db.db, stale, false, 'stale');

    const res = await get(`/admin/endpoints?q=${tag}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);

    const healthyRow = rowOf(res.text, healthy);
    expect(cell(healthyRow, 'state')).toBe('active');
    expect(cell(healthyRow, 'lastSuccess')).toBe('3 days ago');
    expect(healthyRow).toMatch(
      /<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"\s*>/,
    );
    expect(cell(healthyRow, 'successRate')).toBe('75 %');
    expect(healthyRow).toContain('title="3 of 4 attempts"');
    expect(cell(healthyRow, 'latency')).toBe('250 ms / 385 ms');
    expect(cell(healthyRow, 'consecutiveFailures')).toBe('0');
    expect(cell(healthyRow, 'failingSince')).toBe('—');
    expect(cell(healthyRow, 'circuit')).toBe('—');
    expect(cell(healthyRow, 'staleIn')).toBe('26 days');

    // The list computes the same numbers as GET /v1/endpoints/:id.
    const apiView = endpointHealthSchema.parse(
      (await api.call('GET', `/v1/endpoints/${healthy}`)).body,
    );
    expect(apiView.stats24h).toMatchObject({
      attempts: 4,
      successRate: 0.75,
      meanLatencyMs: 250,
      p95LatencyMs: 385,
    });

    const failingRow = rowOf(res.text, failing);
    expect(cell(failingRow, 'lastSuccess')).toBe('never');
    expect(cell(failingRow, 'successRate')).toBe('—');
    expect(cell(failingRow, 'consecutiveFailures')).toBe('4');
    expect(cell(failingRow, 'failingSince')).toBe('2 days ago disabled in 2 days');
    expect(failingRow).toMatch(/class="badge warn"\s*>disabled in 2 days/);
    // Default threshold (365 days) counted from creation a moment ago.
    expect(cell(failingRow, 'staleIn')).toBe('364 days');

    const staleRow = rowOf(res.text, stale);
    expect(cell(staleRow, 'state')).toBe('disabled (stale)');
    expect(cell(staleRow, 'staleIn')).toBe('—');

    // Links to each endpoint and to Bull Board.
    expect(res.text).toContain(`href="/admin/endpoints/${healthy}"`);
    expect(res.text).toContain('href="/admin/queues"');
  });

  it('marks an endpoint past its deadline as due and one inside the warning window in warning colours', async () => {
    const tag = token();
    const due = await makeEndpoint({
      description: tag,
      createdAt: new Date(Date.now() - 40 * DAY_MS),
      staleAfterDays: 30,
    });
    const warned = await makeEndpoint({
      description: tag,
      createdAt: new Date(Date.now() - 350 * DAY_MS - 3_600_000),
    });
    const res = await get(`/admin/endpoints?q=${tag}`);
    expect(cell(rowOf(res.text, due), 'staleIn')).toBe('due');
    const warnedRow = rowOf(res.text, warned);
    expect(cell(warnedRow, 'staleIn')).toBe('14 days');
    expect(warnedRow).toContain('class="badge warn"');
  });

  it('searches URL, description and id, and filters by state', async () => {
    const tag = token();
    const active = await makeEndpoint({ url: `http://127.0.0.1:9/${tag}/orders` });
    const failing = await makeEndpoint({
      description: `Billing ${tag}`,
      consecutiveFailures: 2,
      failingSince: new Date(Date.now() - 5 * 3_600_000),
    });
    const disabled = await makeEndpoint({ description: `${tag} 100%_off` });
    await setEndpointActive(api.fleet.db.db, disabled, false);

    const ids = async (query: string) => {
      const res = await get(`/admin/endpoints?${query}`);
      expect(res.status, res.text).toBe(200);
      return [...res.text.matchAll(/<tr data-endpoint="([^"]+)">/g)].map((m) => m[1]);
    };
    expect(await ids(`q=${tag}`)).toEqual([active, failing, disabled]);
    expect(await ids(`q=${tag}/ORDERS`)).toEqual([active]);
    expect(await ids(`q=billing+${tag}`)).toEqual([failing]);
    expect(await ids(`q=${disabled}`)).toEqual([disabled]);
    // LIKE wildcards in the search text match only themselves.
    expect(await ids(`q=${encodeURIComponent('100%_off')}`)).toEqual([disabled]);
    expect(await ids(`q=${tag}&state=active`)).toEqual([active, failing]);
    expect(await ids(`q=${tag}&state=disabled`)).toEqual([disabled]);
    expect(await ids(`q=${tag}&state=failing`)).toEqual([failing]);
    expect(await ids(`q=nothing-${tag}`)).toEqual([]);

    // The form keeps what was asked for.
    const res = await get(`/admin/endpoints?q=${tag}&state=failing`);
    expect(res.text).toMatch(new RegExp(`name="q"\\s+value="${tag}"`));
    expect(res.text).toMatch(/<option value="failing"\s+selected>/);
  });

  it('filters failing endpoints by their failing streak, not by failures left over from before a re-enabling', async () => {
    const owner = `org_${token()}`;
    const make = async (fields: Partial<typeof endpoints.$inferInsert>) => {
      const id = await makeEndpoint(fields);
      await api.fleet.db.db.update(endpoints).set({ ownerId: owner }).where(eq(endpoints.id, id));
      return id;
    };
    const failing = await make({
      consecutiveFailures: 6,
      failingSince: new Date(Date.now() - 30 * 3_600_000),
    });
    // Re-enabled after failing: its streak ended (failing_since cleared), its counter did not.
    const reenabled = await make({ consecutiveFailures: 9, failingSince: null });
    const failingDisabled = await make({
      active: false,
      deactivationReason: 'failing',
      consecutiveFailures: 40,
      failingSince: new Date(Date.now() - 5 * DAY_MS),
    });

    const res = await get(`/admin/endpoints?owner=${owner}&state=failing`);
    expect(res.status).toBe(200);
    const listed = [...res.text.matchAll(/<tr data-endpoint="([^"]+)">/g)].map((m) => m[1]);
    expect(listed).toEqual([failing, failingDisabled]);
    expect(listed).not.toContain(reenabled);
    expect(res.text).toMatch(
      /<option value="failing"\s+selected>\s*Failing \(no success since a failure\) \(2\)/,
    );
    // How long each has been failing, and when an active one is disabled.
    expect(cell(rowOf(res.text, failing), 'failingSince')).toBe('1 day ago disabled in 3 days');
    expect(cell(rowOf(res.text, failingDisabled), 'failingSince')).toBe('5 days ago');
  });

  it('redirects the address with a trailing slash to the list', async () => {
    const res = await get('/admin/endpoints/');
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe('/admin/endpoints');
  });

  it('answers 400 naming the parameter for a state, cursor or search it does not know', async () => {
    for (const [query, named] of [
      ['state=broken', 'state must be one of all, active, disabled, failing'],
      ['after=nope', 'after must be an endpoint id'],
      [`q=${'x'.repeat(201)}`, 'q is longer than 200 characters'],
    ]) {
      const res = await get(`/admin/endpoints?${query}`);
      expect(res.status).toBe(400);
      expect(res.text).toContain(named);
      expect(res.text).toContain('invalid_query');
    }
  });

  it('pages 100 endpoints at a time with a link to the next page', async () => {
    const tag = token();
    const ids: string[] = [];
    for (let n = 0; n < 101; n++) ids.push(await makeEndpoint({ description: `page ${tag}` }));
    const first = await get(`/admin/endpoints?q=${tag}`);
    expect(first.text.match(/<tr data-endpoint=/g)).toHaveLength(100);
    const next = /<a href="([^"]+)" rel="next">/.exec(first.text)?.[1]?.replaceAll('&amp;', '&');
    expect(next).toBe(`/admin/endpoints?q=${tag}&after=${ids[99]}`);
    const second = await get(next!);
    expect([...second.text.matchAll(/<tr data-endpoint="([^"]+)">/g)].map((m) => m[1])).toEqual([
      ids[100],
    ]);
    expect(second.text).not.toContain('rel="next"');
  });

  it('shows descriptions and URLs containing markup as text', async () => {
    const id = await makeEndpoint({
      url: 'http://127.0.0.1:9/hook?a="><img src=x onerror=alert(1)>',
      description: '<script>alert("owned")</script>',
    });
    for (const path of [`/admin/endpoints?q=${id}`, `/admin/endpoints/${id}`]) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.text).not.toContain('<script');
      expect(res.text).not.toContain('<img');
      expect(res.text).toContain('&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;');
      expect(res.text).toContain('hook?a=&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
      // And no script could run even if some markup slipped through.
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('shows the circuit state a circuit breaker reports, and "unknown" when asking it fails', async () => {
    const tag = token();
    const open = await makeEndpoint({ description: tag });
    const closed = await makeEndpoint({ description: tag });
    const retryAt = new Date(Date.now() + 5 * 60_000 + 30_000);
    const asked: (readonly string[])[] = [];
    const withBreaker = createApp({
      ...api.deps,
      circuitStates: (ids) => {
        asked.push(ids);
        return Promise.resolve(
          new Map([
            [open, { state: 'open' as const, retryAt }],
            [closed, { state: 'closed' as const }],
          ]),
        );
      },
    });
    const res = await get(`/admin/endpoints?q=${tag}`, withBreaker);
    expect(res.status, res.text).toBe(200);
    expect(asked).toEqual([[open, closed]]); // once for the whole page
    expect(cell(rowOf(res.text, open), 'circuit')).toBe('open retry in 5 minutes');
    expect(cell(rowOf(res.text, closed), 'circuit')).toBe('closed');

    const broken = createApp({
      ...api.deps,
      circuitStates: () => Promise.reject(new Error('Redis down')),
    });
    const detail = await get(`/admin/endpoints/${open}`, broken);
    expect(detail.status).toBe(200);
    expect(fact(detail.text, 'circuit')).toBe('unknown');
  });
});

describe('GET /admin/endpoints/:id', () => {
  it('shows the facts, the newest 50 attempts newest first, the failed deliveries and the buttons', async () => {
    const id = await makeEndpoint({
      description: 'orders service',
      eventTypes: ['order.*'],
      consecutiveFailures: 1,
      lastSuccessAt: new Date(Date.now() - 2 * 3_600_000 - 60_000),
    });
    let newest = '';
    for (let n = 0; n < 55; n++) {
      const outcome = n === 54 ? 'failed' : 'succeeded';
      newest = await recordAttempt(id, { agoMs: (60 - n) * 60_000, outcome, durationMs: n });
    }

    const res = await get(`/admin/endpoints/${id}`);
    expect(res.status).toBe(200);
    expect(fact(res.text, 'state')).toBe('active');
    expect(fact(res.text, 'lastSuccess')).toBe('2 hours ago');
    expect(fact(res.text, 'consecutiveFailures')).toBe('1');
    expect(fact(res.text, 'successRate')).toBe('98.2 % (54 of 55 attempts)');
    expect(fact(res.text, 'circuit')).toBe('—');
    expect(res.text).toContain('order.*');

    const attemptRows = [
      .../<table data-table="attempts">([\s\S]*?)<\/table>/
        .exec(res.text)![1]!
        .matchAll(/<tr data-message="([^"]+)">/g),
    ].map((m) => m[1]);
    expect(attemptRows).toHaveLength(50);
    expect(attemptRows[0]).toBe(newest);

    const failed = /<table data-table="failed">([\s\S]*?)<\/table>/.exec(res.text)![1]!;
    expect([...failed.matchAll(/<tr data-message="([^"]+)">/g)].map((m) => m[1])).toEqual([newest]);
    expect(failed).toContain(`href="/admin/queues/queue/deliveries/${deliveryJobId(newest, id)}"`);
    expect(failed).toContain('receiver answered 500');

    for (const action of ['test', 'disable', 'replay'])
      expect(res.text).toContain(`<form method="post" action="/admin/endpoints/${id}/${action}">`);
    for (const since of ['1h', '24h', '7d', '14d'])
      expect(res.text).toContain(`<option value="${since}"`);
    expect(res.text).toContain('href="/admin/queues"');
  });

  it('shows the payload format, the custom header names without their values, and the retry schedule', async () => {
    const own = await makeEndpoint({
      payloadFormat: 'raw',
      headers: { 'X-Api-Key': 'value-never-shown' },
      retryScheduleMs: [30_000, 7_200_000],
    });
    const page = await get(`/admin/endpoints/${own}`);
    expect(fact(page.text, 'payloadFormat')).toBe('raw (the payload alone)');
    expect(fact(page.text, 'headers')).toBe('X-Api-Key (value hidden)');
    expect(fact(page.text, 'retrySchedule')).toBe('30s, 2h (its own)');
    expect(page.text).not.toContain('value-never-shown');

    const plain = await get(`/admin/endpoints/${await makeEndpoint()}`);
    expect(fact(plain.text, 'payloadFormat')).toBe('envelope (type, timestamp, data)');
    expect(fact(plain.text, 'headers')).toBe('none');
    expect(fact(plain.text, 'retrySchedule')).toMatch(/ \(the default\)$/);
  });

  it('answers 404 with a page for an unknown or malformed id', async () => {
    for (const id of ['ep_0000000000doesnotexist', 'nonsense', '%3Cscript%3E']) {
      const res = await get(`/admin/endpoints/${id}`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.text).toContain('No endpoint with id');
      expect(res.text).not.toContain('<script>');
    }
  });
});

describe('the buttons of the detail view', () => {
  it('answers an oversized form post with 413 payload_too_large, not a 500, and changes nothing', async () => {
    const id = await makeEndpoint({ reactivatedAt: null });
    const res = await post(`/admin/endpoints/${id}/disable`, { pad: 'x'.repeat(8000) });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 'payload_too_large' });
    expect(String(res.body.detail)).toMatch(/larger than 4096 bytes/);
    expect(await endpointRow(id)).toMatchObject({ active: true });
  });

  it('disable and enable the endpoint, redirecting back with a line saying so', async () => {
    const id = await makeEndpoint({ reactivatedAt: null });
    const disabled = await post(`/admin/endpoints/${id}/disable`);
    expect(disabled.status).toBe(303);
    expect(disabled.headers.get('location')).toBe(`/admin/endpoints/${id}?done=disabled`);
    expect(await endpointRow(id)).toMatchObject({ active: false, deactivationReason: 'manual' });
    const shown = await get(disabled.headers.get('location')!);
    expect(shown.text).toContain('Endpoint disabled');
    expect(fact(shown.text, 'state')).toMatch(/^disabled \(manual\) since just now$/);
    // A disabled endpoint offers Enable, and greys out the buttons that need it active.
    expect(shown.text).toContain(`action="/admin/endpoints/${id}/enable"`);
    expect(shown.text).toMatch(
      /<button type="submit"\s+disabled>\s*Send a test event\s*<\/button>/,
    );

    const again = await post(`/admin/endpoints/${id}/disable`);
    expect(again.headers.get('location')).toBe(`/admin/endpoints/${id}?done=already-disabled`);

    const enabled = await post(`/admin/endpoints/${id}/enable`);
    expect(enabled.status).toBe(303);
    expect(enabled.headers.get('location')).toBe(`/admin/endpoints/${id}?done=enabled`);
    const row = await endpointRow(id);
    expect(row).toMatchObject({ active: true, deactivationReason: null });
    expect(row.reactivatedAt).not.toBeNull(); // the stale clock restarts
    expect((await get(enabled.headers.get('location')!)).text).toContain('Endpoint enabled');
  });

  it('send a test event to the endpoint, and say why not when it is disabled', async () => {
    const id = await makeEndpoint();
    const res = await post(`/admin/endpoints/${id}/test`);
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!, 'http://localhost');
    expect(location.pathname).toBe(`/admin/endpoints/${id}`);
    expect(location.searchParams.get('done')).toBe('test-sent');
    const messageId = location.searchParams.get('messageId')!;
    expect(await api.fleet.producer.messagesQueue.getJob(messageJobId(messageId))).toBeDefined();
    expect(await findMessage(api.fleet.db.db, messageId)).toMatchObject({
      endpointIds: [id],
      eventType: 'hookfleet.test',
    });
    const shown = await get(`${location.pathname}${location.search}`);
    expect(shown.text).toContain(`Test event ${messageId} queued`);

    await setEndpointActive(api.fleet.db.db, id, false);
    const refused = await post(`/admin/endpoints/${id}/test`);
    expect(refused.headers.get('location')).toBe(
      `/admin/endpoints/${id}?done=failed&code=endpoint_inactive`,
    );
    expect((await get(refused.headers.get('location')!)).text).toContain(
      'The endpoint is disabled: enable it first.',
    );
  });

  it('replay the failed deliveries of the chosen window once the receiver is healthy', async () => {
    const fail500: Responder = (_request, _index, res) => {
      res.writeHead(500).end();
    };
    const receiver = await startReceiver(fail500);
    try {
      const id = (await insertEndpoint(api.fleet.db.db, { url: receiver.url })).id;
      api.fleet.startWorker();
      const jobIds: string[] = [];
      for (let n = 0; n < 2; n++) {
        const sent = await api.fleet.producer.send({
          eventType: 'page.replay',
          payload: { n },
          endpointIds: [id],
        });
        jobIds.push(deliveryJobId(sent.id, id));
      }
      for (const jobId of jobIds)
        expect((await api.fleet.waitForDelivery(jobId)).state).toBe('failed');
      await api.fleet.flushRecorders();
      const failing = await get(`/admin/endpoints/${id}`);
      expect(failing.text.match(/<tr data-message=/g)?.length).toBeGreaterThanOrEqual(2);
      expect(fact(failing.text, 'lastSuccess')).toBe('never');

      receiver.respondWith(ok);
      const delivered = receiver.requests.length + 2;
      const completed = api.fleet.nextCompletions(jobIds);
      const res = await post(`/admin/endpoints/${id}/replay`, { since: '1h' });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(
        `/admin/endpoints/${id}?done=replayed&since=1h&total=2&retried=2&enqueued=0&pending=0`,
      );
      await receiver.waitForRequests(delivered);
      await completed;
      await api.fleet.flushRecorders();

      const shown = await get(res.headers.get('location')!);
      expect(shown.text).toContain(
        'Replaying 2 failed deliveries from the last hour: 2 retried, 0 enqueued again, 0 already pending.',
      );
      expect(fact(shown.text, 'lastSuccess')).toBe('just now');
      expect(fact(shown.text, 'consecutiveFailures')).toBe('0');
      expect(shown.text).toContain('No failed deliveries.');
    } finally {
      await receiver.close();
    }
  });

  it('answer 400 naming the field for a replay window the form does not offer', async () => {
    const id = await makeEndpoint();
    for (const form of [{ since: '3y' }, {}] as Record<string, string>[]) {
      const res = await post(`/admin/endpoints/${id}/replay`, form);
      expect(res.status).toBe(400);
      expect(res.text).toContain('since must be one of 1h, 24h, 7d, 14d');
    }
  });

  it('refuse a POST that does not come from the dashboard itself', async () => {
    const id = await makeEndpoint();
    const cases: [Record<string, string>, string][] = [
      [{ host: 'localhost', origin: 'http://evil.example' }, 'another site'],
      [{ host: 'localhost', origin: 'http://localhost:8080' }, 'another site'],
      [{ host: 'localhost', origin: 'null' }, 'another site'],
      [
        { host: 'localhost', referer: 'http://evil.example/page' },
        '(Referer), not from this dashboard',
      ],
      [{ host: 'localhost' }, 'neither an Origin nor a Referer'],
    ];
    for (const [headers, detail] of cases) {
      const res = await post(`/admin/endpoints/${id}/disable`, {}, headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.body).toMatchObject({
        code: 'forbidden',
        detail: expect.stringContaining(detail),
      });
    }
    expect((await endpointRow(id)).active).toBe(true);

    // A browser that sends only a Referer of the dashboard's own page is let through.
    const res = await post(
      `/admin/endpoints/${id}/disable`,
      {},
      {
        host: 'localhost',
        referer: `http://localhost/admin/endpoints/${id}`,
      },
    );
    expect(res.status).toBe(303);
  });

  it('answer 404 for an unknown endpoint and 401 without credentials', async () => {
    const res = await post('/admin/endpoints/ep_0000000000doesnotexist/disable');
    expect(res.status).toBe(404);
    expect(res.text).toContain('No endpoint with id');
    const id = await makeEndpoint();
    const anonymous = await callApp(api.app, 'POST', `/admin/endpoints/${id}/disable`, {
      anonymous: true,
      headers: SAME_ORIGIN,
    });
    expect(anonymous.status).toBe(401);
    expect((await endpointRow(id)).active).toBe(true);
  });
});
