import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEndpoint } from '../../src/db/endpoints.js';
import { attempts } from '../../src/db/schema.js';
import { messageJobId } from '../../src/jobs.js';
import { findMessage } from '../../src/db/messages.js';
import { endpointHealthSchema, rotatedSecretSchema } from '../../src/api/contracts.js';
import { expectOneLineError, runHookfleet } from '../helpers/hookfleetCli.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

let fleet: TestFleet;

/** Runs the real `hookfleet` CLI against this file's database and queue prefix. */
const hookfleet = (...args: string[]) => runHookfleet(fleet.config, args);

beforeAll(async () => {
  fleet = await createTestFleet();
});
afterAll(async () => {
  await fleet.close();
});

// Each run is a Node process of its own starting tsx: about 1 s of CPU, up to 4 s on a loaded
// machine, and the first test runs eight in a row; the timeout is for that, not for the CLI.
describe('hookfleet endpoints and send', { timeout: 90_000 }, () => {
  it('adds, lists, disables, enables and tests an endpoint, and sends to it, with --json output', async () => {
    const added = await hookfleet(
      'endpoints',
      'add',
      'http://127.0.0.1:9/hooks',
      '--event-type',
      'cli.test',
      '--json',
    );
    expect(added.code).toBe(0);
    const endpoint = JSON.parse(added.stdout) as {
      id: string;
      secret: string;
      eventTypes: string[];
    };
    expect(endpoint.secret).toMatch(/^whsec_/);
    expect(endpoint.eventTypes).toEqual(['cli.test']);

    const listed = JSON.parse((await hookfleet('endpoints', 'list', '--json')).stdout) as Record<
      string,
      unknown
    >[];
    expect(listed).toEqual([expect.objectContaining({ id: endpoint.id, active: true })]);
    expect(listed[0]).not.toHaveProperty('secret');

    const disabled = JSON.parse(
      (await hookfleet('endpoints', 'disable', endpoint.id, '--json')).stdout,
    ) as {
      active: boolean;
    }[];
    expect(disabled[0]!.active).toBe(false);
    const enabled = JSON.parse(
      (await hookfleet('endpoints', 'enable', endpoint.id, '--json')).stdout,
    ) as {
      active: boolean;
      reactivatedAt: string;
    }[];
    expect(enabled[0]).toMatchObject({ active: true, reactivatedAt: expect.any(String) });

    const table = await hookfleet('endpoints', 'list');
    expect(table.stdout).toMatch(/^ID\s+STATE\s+URL/);
    expect(table.stdout).toContain(endpoint.id);

    const sent = JSON.parse(
      (await hookfleet('send', 'cli.test', '{"hello":"cli"}', '--json')).stdout,
    ) as {
      id: string;
      deliveries: number;
    };
    expect(sent.deliveries).toBe(1);
    expect(await fleet.producer.messagesQueue.getJob(messageJobId(sent.id))).toBeDefined();
    expect((await findMessage(fleet.db.db, sent.id))?.body).toBe('{"hello":"cli"}');

    const tested = JSON.parse(
      (await hookfleet('endpoints', 'test', endpoint.id, '--json')).stdout,
    ) as {
      endpointIds: string[];
    };
    expect(tested.endpointIds).toEqual([endpoint.id]);
  });

  it('shows one endpoint with its 24 h health, as GET /v1/endpoints/:id does', async () => {
    const { id } = JSON.parse(
      (await hookfleet('endpoints', 'add', 'http://127.0.0.1:9/show', '--json')).stdout,
    ) as { id: string };
    const now = Date.now();
    await fleet.db.db.insert(attempts).values(
      [200, 500, 200, 200].map((statusCode, n) => ({
        messageId: `msg_show${n}`,
        endpointId: id,
        attemptNumber: 1,
        attemptedAt: new Date(now - 60_000 + n),
        outcome: statusCode === 200 ? 'succeeded' : 'retrying',
        statusCode,
        durationMs: 10 * (n + 1),
      })),
    );

    const [shown, text] = await Promise.all([
      hookfleet('endpoints', 'show', id, '--json'),
      hookfleet('endpoints', 'show', id),
    ]);
    expect(shown.code, shown.stderr).toBe(0);
    const view = endpointHealthSchema.parse(JSON.parse(shown.stdout));
    expect(view).toMatchObject({ id, active: true });
    expect(view.stats24h).toMatchObject({
      attempts: 4,
      succeeded: 3,
      failed: 1,
      successRate: 0.75,
    });
    expect(shown.stdout).not.toContain('whsec_');

    expect(text.stdout).toMatch(/^id\s+ep_/);
    expect(text.stdout).toMatch(/^state\s+active$/m);
    expect(text.stdout).toMatch(/^last 24 h\s+4 attempts, 75\.0% succeeded, latency mean 25 ms/m);
  });

  it('rotates a secret, prints the new one once and says how long the old one keeps signing', async () => {
    const created = JSON.parse(
      (await hookfleet('endpoints', 'add', 'http://127.0.0.1:9/rotate', '--json')).stdout,
    ) as { id: string; secret: string };

    const rotated = await hookfleet('endpoints', 'rotate-secret', created.id, '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    const body = rotatedSecretSchema.parse(JSON.parse(rotated.stdout));
    expect(body.secret).toMatch(/^whsec_/);
    expect(body.secret).not.toBe(created.secret);
    const row = await findEndpoint(fleet.db.db, created.id);
    expect(row).toMatchObject({ secret: body.secret, previousSecret: created.secret });
    // HOOKFLEET_SECRET_ROTATION_OVERLAP_MS defaults to 24 h.
    const overlapMs = Date.parse(body.previousSecretExpiresAt) - Date.now();
    expect(overlapMs).toBeGreaterThan(23 * 3600_000);
    expect(overlapMs).toBeLessThanOrEqual(24 * 3600_000);

    const text = await hookfleet('endpoints', 'rotate-secret', created.id);
    expect(text.stdout).toMatch(/^new signing secret for ep_\w+ \(shown once\): whsec_/);
    expect(text.stdout).toMatch(/previous secret keeps signing .* for 24 h, until \d{4}-/);
  });

  it('--help lists every action, the flags and the environment variables', async () => {
    const help = await hookfleet('endpoints', '--help');
    expect(help.code).toBe(0);
    for (const word of [
      'show <id>',
      'rotate-secret <id>',
      '--json',
      '--event-type',
      'DATABASE_URL',
      'HOOKFLEET_SECRET_ROTATION_OVERLAP_MS',
    ]) {
      expect(help.stdout).toContain(word);
    }
  });

  // Each case is a Node process of its own that changes nothing; run side by side they take a
  // few seconds rather than one or two each (most of a run is Node and tsx starting).
  it.concurrent.each([
    [['endpoints', 'frob'], 2, /unknown action 'frob'/],
    [['endpoints'], 2, /expected an action: list, add, show/],
    [['endpoints', 'add'], 2, /expected a URL/],
    [['endpoints', 'add', 'http://10.0.0.1/x'], 2, /10\.0\.0\.1 is a private address/],
    [['endpoints', 'show'], 2, /show: expected an endpoint id/],
    [['endpoints', 'show', 'ep_a', 'ep_b'], 2, /unexpected argument 'ep_b'/],
    [['endpoints', 'list', '--colour'], 2, /Unknown option '--colour'/],
    [['endpoints', 'enable', 'ep_missing'], 3, /no endpoint ep_missing/],
    [['endpoints', 'disable', 'ep_missing'], 3, /no endpoint ep_missing/],
    [['endpoints', 'test', 'ep_missing'], 3, /no endpoint ep_missing/],
    [['endpoints', 'show', 'ep_missing'], 3, /no endpoint ep_missing/],
    [['endpoints', 'rotate-secret', 'ep_missing'], 3, /no endpoint ep_missing/],
    [['send', 'cli.test', '{not json'], 2, /the payload is not JSON/],
    [['send', 'cli.test'], 2, /expected <eventType> <json\|@file>/],
    [['send', 'bad type!', '{}'], 2, /eventType/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
    [
      ['endpoints', 'add', 'http://127.0.0.1:9/', '--header', 'Webhook-Id: x'],
      2,
      /--header 'Webhook-Id': webhook-\* headers/,
    ],
    [['endpoints', 'add', 'http://127.0.0.1:9/', '--header', 'novalue'], 2, /'Name: value'/],
    [
      ['endpoints', 'add', 'http://127.0.0.1:9/', '--payload-format', 'xml'],
      2,
      /--payload-format takes envelope or raw/,
    ],
    [
      ['endpoints', 'add', 'http://127.0.0.1:9/', '--retry-schedule', '5s,forever'],
      2,
      /--retry-schedule: expected a delay from 1s to 24h/,
    ],
    [['endpoints', 'show', 'ep_x', '--header', 'X-A: b'], 2, /--header applies to add/],
  ])('exits with a one-line error for %j (exit code %i)', async (args, code, message) => {
    expectOneLineError(await hookfleet(...args), code, message);
  });

  it('adds an endpoint with its payload format, headers and retry schedule, and shows them with header values masked', async () => {
    const added = await hookfleet(
      'endpoints',
      'add',
      'http://127.0.0.1:9/settings',
      '--payload-format',
      'raw',
      '--header',
      'X-Api-Key: key-123',
      '--header',
      'X-Team:billing',
      '--retry-schedule',
      '10s,5m,2h',
      '--json',
    );
    expect(added.code).toBe(0);
    const { id } = JSON.parse(added.stdout) as { id: string };
    expect(added.stdout).not.toContain('key-123');
    const row = await findEndpoint(fleet.db.db, id);
    expect(row).toMatchObject({
      payloadFormat: 'raw',
      headers: { 'X-Api-Key': 'key-123', 'X-Team': 'billing' },
      retryScheduleMs: [10_000, 300_000, 7_200_000],
    });
    const [shown, listed] = await Promise.all([
      hookfleet('endpoints', 'show', id),
      hookfleet('endpoints', 'list', '--json'),
    ]);
    expect(shown.stdout).toMatch(/payload\s+raw/);
    expect(shown.stdout).toMatch(/headers\s+X-Api-Key: \*+, X-Team: \*+/);
    expect(shown.stdout).toMatch(/retry schedule\s+10s, 5m, 2h/);
    expect(shown.stdout).not.toContain('key-123');
    expect(listed.stdout).not.toContain('key-123');
  });

  it('exits 1 with one line when PostgreSQL cannot be reached', async () => {
    const result = await runHookfleet(fleet.config, ['endpoints', 'list'], {
      DATABASE_URL: 'postgres://root@127.0.0.1:1/nowhere',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^hookfleet: cannot reach PostgreSQL \(connect ECONNREFUSED 127\.0\.0\.1:1\); check DATABASE_URL$/m,
    );
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('documents the exit codes in hookfleet --help', async () => {
    const help = await hookfleet('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(
      /Exit codes:\n\s+0\s+success\n\s+1\s+operational failure.*\n\s+2\s+usage error.*\n\s+3\s+not found/,
    );
    expect(help.stdout).toMatch(/^\s+messages\s/m);
    expect(help.stdout).toMatch(/^\s+failed\s/m);
  });
});
