import { beforeAll, describe, expect, it } from 'vitest';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { expectOneLineError, useCliFleet } from '../helpers/hookfleetCli.js';

const { fleet, hookfleet } = useCliFleet();
const db = () => fleet().db.db;

async function endpointWithSettings() {
  return insertEndpoint(db(), {
    url: 'http://127.0.0.1:9/before',
    eventTypes: ['order.paid'],
    rateLimitPerSecond: 5,
    staleAfterDays: 30,
    failingDisableAfterHours: 48,
    retryScheduleMs: [10_000, 60_000],
    headers: { 'X-Api-Key': 'old-key', 'X-Team': 'billing' },
  });
}

const BAD_UPDATES: [string[], number, RegExp][] = [
  [[], 2, /update: expected at least one setting to change/],
  [['--rate-limit', 'lots'], 2, /--rate-limit takes a whole number .* 1 to 10000 or 'none'/],
  [['--rate-limit', '0'], 2, /--rate-limit takes a whole number/],
  [['--stale-after-days', 'none'], 2, /--stale-after-days takes .* or 'default'/],
  [['--retry-schedule', '5s,forever'], 2, /--retry-schedule: expected a delay from 1s to 24h/],
  [
    ['--retry-schedule', Array(17).fill('24h').join(',')],
    2,
    /--retry-schedule: the schedule lasts 17d; messages are kept 30 days/,
  ],
  [['--payload-format', 'xml'], 2, /--payload-format takes envelope or raw/],
  [['--header', 'Connection: close'], 2, /--header 'Connection': connection is set by/],
  [['--header', 'X-Key: ********'], 2, /--header 'X-Key': \*{8} is how values are shown/],
  [['--remove-header', 'X-Nope'], 2, /--remove-header 'X-Nope': ep_\w+ has no such header/],
  [
    ['--header', 'X-Team: x', '--remove-header', 'x-team'],
    2,
    /--remove-header 'x-team' is also set by --header/,
  ],
  [['--url', 'ftp://127.0.0.1/x'], 2, /--url: expected an http:\/\/ or https:\/\/ URL/],
  [['--url', 'http://10.0.0.1/x'], 2, /--url: deliveries may not go there: .*private/],
  [['--event-type', 'bad type!'], 2, /--event-type: expected an event type/],
  [['--owner', 'org_a'], 2, /--owner applies to list and add, not update/],
];

describe('hookfleet endpoints update', () => {
  it('changes the settings it is given, keeps the headers it does not name, and prints them masked', async () => {
    const endpoint = await endpointWithSettings();

    const updated = await hookfleet(
      'endpoints',
      'update',
      endpoint.id,
      '--url',
      'http://127.0.0.1:9/after',
      '--event-type',
      'invoice.*',
      '--event-type',
      'order.paid',
      '--description',
      'Billing system',
      '--payload-format',
      'raw',
      '--rate-limit',
      '12',
      '--retry-schedule',
      '5s, 1m,1h',
      '--header',
      'X-Api-Key: new-key',
      '--header',
      'X-Region: eu',
      '--json',
    );

    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).not.toContain('new-key');
    expect(updated.stdout).not.toContain('whsec_');
    expect(JSON.parse(updated.stdout)).toMatchObject({
      id: endpoint.id,
      url: 'http://127.0.0.1:9/after',
      headers: { 'X-Api-Key': '********', 'X-Region': '********', 'X-Team': '********' },
    });
    expect(await findEndpoint(db(), endpoint.id)).toMatchObject({
      url: 'http://127.0.0.1:9/after',
      eventTypes: ['invoice.*', 'order.paid'],
      description: 'Billing system',
      payloadFormat: 'raw',
      rateLimitPerSecond: 12,
      retryScheduleMs: [5_000, 60_000, 3_600_000],
      headers: { 'X-Api-Key': 'new-key', 'X-Region': 'eu', 'X-Team': 'billing' },
      // Not named: left alone.
      staleAfterDays: 30,
      failingDisableAfterHours: 48,
      secret: endpoint.secret,
    });
  });

  it('removes a header and puts the rate limit, retry schedule and thresholds back to the defaults', async () => {
    const endpoint = await endpointWithSettings();

    const updated = await hookfleet(
      'endpoints',
      'update',
      endpoint.id,
      '--remove-header',
      'x-api-key',
      '--rate-limit',
      'none',
      '--retry-schedule',
      'default',
      '--stale-after-days',
      'default',
      '--failing-disable-after-hours',
      'default',
    );

    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout.trim()).toBe(
      `updated ${endpoint.id}: --stale-after-days, --rate-limit, --failing-disable-after-hours, --header, --retry-schedule`,
    );
    expect(await findEndpoint(db(), endpoint.id)).toMatchObject({
      headers: { 'X-Team': 'billing' },
      rateLimitPerSecond: null,
      retryScheduleMs: null,
      staleAfterDays: null,
      failingDisableAfterHours: null,
      url: endpoint.url,
    });
    const shown = await hookfleet('endpoints', 'show', endpoint.id);
    expect(shown.stdout).toMatch(/^rate limit\s+none/m);
    expect(shown.stdout).toMatch(/^retry schedule\s+.*\(the default\)$/m);
    expect(shown.stdout).toMatch(/^headers\s+X-Team: \*+$/m);
  });

  it('checks the headers after the change as a whole, as the API does', async () => {
    const headers = Object.fromEntries(
      Array.from({ length: 20 }, (_, n) => [`X-H${n}`, 'v']),
    ) as Record<string, string>;
    const endpoint = await insertEndpoint(db(), { url: 'http://127.0.0.1:9/h', headers });

    expectOneLineError(
      await hookfleet('endpoints', 'update', endpoint.id, '--header', 'X-One-More: v'),
      2,
      /^hookfleet: endpoints update: --header at most 20 headers \(got 21\)/,
    );
    const swapped = await hookfleet(
      'endpoints',
      'update',
      endpoint.id,
      '--remove-header',
      'X-H0',
      '--header',
      'X-One-More: v',
    );
    expect(swapped.code, swapped.stderr).toBe(0);
    const row = await findEndpoint(db(), endpoint.id);
    expect(Object.keys(row!.headers)).toHaveLength(20);
    expect(row!.headers).toMatchObject({ 'X-One-More': 'v' });
    expect(row!.headers).not.toHaveProperty('X-H0');
  });

  it('--help describes update and its ways back to the defaults', async () => {
    const help = await hookfleet('endpoints', '--help');
    for (const word of ['update <id>', '--remove-header', '--rate-limit none', 'default']) {
      expect(help.stdout).toContain(word);
    }
  });

  describe('refuses bad input in one line and changes nothing', () => {
    let id: string;
    let before: Awaited<ReturnType<typeof findEndpoint>>;
    beforeAll(async () => {
      id = (await endpointWithSettings()).id;
      before = await findEndpoint(db(), id);
    });

    // Each case is a Node process of its own that changes nothing (the next test checks); run
    // side by side they take a few seconds rather than one to five each.
    it.concurrent.each(BAD_UPDATES)('update %j exits %i', async (flags, code, message) => {
      expectOneLineError(await hookfleet('endpoints', 'update', id, ...flags), code, message);
    });

    it('left the endpoint as it was', async () => {
      expect(await findEndpoint(db(), id)).toEqual(before);
    });
  });

  it('exits 3 for an unknown endpoint, 2 without one, and refuses update-only words on add', async () => {
    const [unknown, noId, addNone, addUrl] = await Promise.all([
      hookfleet('endpoints', 'update', 'ep_missing', '--rate-limit', '5'),
      hookfleet('endpoints', 'update'),
      hookfleet('endpoints', 'add', 'http://127.0.0.1:9/', '--rate-limit', 'none'),
      hookfleet('endpoints', 'add', 'http://127.0.0.1:9/', '--url', 'http://127.0.0.1:9/'),
    ]);
    expectOneLineError(unknown, 3, /no endpoint ep_missing/);
    expectOneLineError(noId, 2, /update: expected an endpoint id/);
    expectOneLineError(
      addNone,
      2,
      /--rate-limit takes a whole number of requests per second from 1 to 10000 \(got 'none'\)/,
    );
    expectOneLineError(addUrl, 2, /--url applies to update, not add/);
  });
});
