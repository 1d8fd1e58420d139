import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint, setEndpointActive } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { expectOneLineError, runHookfleet } from '../helpers/hookfleetCli.js';
import { startReceiver, type Receiver, type Responder } from '../helpers/receiver.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// A real worker with the test fleet's short retry schedule: deliveries to a receiver answering
// 500 fail for good within a fraction of a second. Circuit breaker off, so replays go out at once.
let fleet: TestFleet;
let receiver: Receiver;
let endpointId: string;
let failedJobs: string[];

const hookfleet = (...args: string[]) => runHookfleet(fleet.config, args);
const answer =
  (status: number): Responder =>
  (_request, _index, res) => {
    res.writeHead(status).end();
  };

interface ListedFailure {
  messageId: string;
  endpointId: string;
  eventType: string;
  failedAt: string;
  attemptNumber: number;
  statusCode: number | null;
  error: string | null;
}

beforeAll(async () => {
  fleet = await createTestFleet({ HOOKFLEET_CIRCUIT_FAILURES: '0' });
  receiver = await startReceiver(answer(500));
  endpointId = (await insertEndpoint(fleet.db.db, { url: receiver.url, eventTypes: ['cli.f'] })).id;
  fleet.startWorker();
  failedJobs = [];
  for (let n = 0; n < 3; n++) {
    const sent = await fleet.producer.send({ eventType: 'cli.f', payload: { n } });
    const jobId = deliveryJobId(sent.id, endpointId);
    expect((await fleet.waitForDelivery(jobId)).state).toBe('failed');
    failedJobs.push(jobId);
  }
  await fleet.flushRecorders();
});
afterAll(async () => {
  await fleet.close();
  await receiver.close();
});

describe('hookfleet failed list', () => {
  it('lists the failed deliveries newest first, as JSON and as a table', async () => {
    const listed = await hookfleet('failed', 'list', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as ListedFailure[];
    expect(rows.map((r) => deliveryJobId(r.messageId, r.endpointId))).toEqual(
      [...failedJobs].reverse(),
    );
    expect(rows[0]).toMatchObject({
      endpointId,
      eventType: 'cli.f',
      attemptNumber: 4,
      statusCode: 500,
    });

    const table = await hookfleet('failed', 'list', '--endpoint', endpointId, '--since', '1h');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(
      /^FAILED AT\s+MESSAGE\s+ENDPOINT\s+EVENT\s+ATTEMPT\s+STATUS\s+ERROR$/m,
    );
    expect(table.stdout.trim().split('\n')).toHaveLength(4);

    const limited = await hookfleet('failed', 'list', '--limit', '2');
    expect(limited.stdout).toContain('(the newest 2; there may be more');

    const sinceNow = await hookfleet(
      'failed',
      'list',
      '--since',
      new Date().toISOString(),
      '--json',
    );
    expect(JSON.parse(sinceNow.stdout)).toEqual([]);
  });
});

describe('hookfleet failed replay', () => {
  it('replays the endpoint’s failures with progress lines on stderr, and they are delivered', async () => {
    receiver.respondWith(answer(204));
    const completed = new Set<string>();
    const allDelivered = new Promise<void>((resolve) => {
      fleet.events.on('completed', ({ jobId }) => {
        completed.add(jobId);
        if (failedJobs.every((id) => completed.has(id))) resolve();
      });
    });

    const result = await hookfleet('failed', 'replay', '--endpoint', endpointId, '--since', '1h');

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(
        `^replayed 3 failed deliveries to ${endpointId} since \\S+: 3 retried, 0 sent as new jobs, 0 already queued again$`,
        'm',
      ),
    );
    // stderr is not a terminal here: plain lines, no bar.
    expect(result.stderr).toBe('replayed 3/3\n');
    await allDelivered;
    await fleet.flushRecorders();
    const after = await hookfleet('failed', 'list', '--endpoint', endpointId, '--json');
    expect(JSON.parse(after.stdout)).toEqual([]);
  });

  it('prints only JSON with --json, and nothing on stderr', async () => {
    const result = await hookfleet('failed', 'replay', '--endpoint', endpointId, '--json');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const body = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(body).toEqual({
      endpointId,
      since: expect.any(String),
      total: 0,
      retried: 0,
      enqueued: 0,
      pending: 0,
    });
    // Without --since: the last 24 hours.
    const sinceMs = Date.parse(body.since as string);
    expect(Date.now() - sinceMs).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(Date.now() - sinceMs).toBeLessThan(24 * 3600_000 + 60_000);
  });

  it('--help lists the actions, flags, the default and the environment variables', async () => {
    const help = await hookfleet('failed', '--help');
    expect(help.code).toBe(0);
    for (const word of [
      'list',
      'replay',
      '--endpoint',
      '--since',
      '--limit',
      '--json',
      'default: 24h',
      'DATABASE_URL',
      'REDIS_URL',
    ]) {
      expect(help.stdout).toContain(word);
    }
  });

  // Each case is a Node process of its own that changes nothing; run side by side they take a
  // few seconds rather than one or two each (most of a run is Node and tsx starting).
  it.concurrent.each([
    [['failed'], 2, /expected an action: list, replay/],
    [['failed', 'replay'], 2, /replay: expected --endpoint <id>/],
    [['failed', 'list', '--since', 'yesterday'], 2, /--since takes an age such as 30m/],
    [['failed', 'list', '--since', '2024-05-01T12:00:00'], 2, /--since takes an age/],
    [['failed', 'list', '--since', '2999-01-01'], 2, /--since 2999-01-01 is in the future/],
    [['failed', 'list', '--limit', '0'], 2, /--limit takes a whole number from 1 to 10000/],
    [['failed', 'list', '--limit', '10001'], 2, /--limit takes a whole number from 1 to 10000/],
    [['failed', 'list', 'extra'], 2, /unexpected argument 'extra'/],
    [['failed', 'list', '--endpoint', 'ep_missing'], 3, /no endpoint ep_missing/],
    [['failed', 'replay', '--endpoint', 'ep_missing'], 3, /no endpoint ep_missing/],
  ])('exits with a one-line error for %j (exit code %i)', async (args, code, message) => {
    expectOneLineError(await hookfleet(...args), code, message);
  });

  it('refuses to replay to a disabled endpoint (exit code 1)', async () => {
    const disabled = (await insertEndpoint(fleet.db.db, { url: receiver.url })).id;
    await setEndpointActive(fleet.db.db, disabled, false);
    const result = await hookfleet('failed', 'replay', '--endpoint', disabled);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/is disabled; enable it first/);
  });
});
