import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { attempts } from '../../src/db/schema.js';
import { RETRY_JOB, deliveryJobId, messageJobId, type DeliveryJobData } from '../../src/jobs.js';
import { messageSchema, redeliverResponse } from '../../src/api/contracts.js';
import { expectOneLineError, runHookfleet } from '../helpers/hookfleetCli.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// No worker runs in this file: attempts are written directly, jobs stay where the tests put them.
let fleet: TestFleet;
let queue: Queue<DeliveryJobData>;
let messageId: string;
let delivered: string; // endpoint whose delivery succeeded on the second attempt
let waiting: string; // endpoint whose delivery has not been attempted yet

const hookfleet = (...args: string[]) => runHookfleet(fleet.config, args);

beforeAll(async () => {
  fleet = await createTestFleet();
  queue = fleet.producer.deliveriesQueue as Queue<DeliveryJobData>;
  const url = 'http://127.0.0.1:9/hook';
  delivered = (await insertEndpoint(fleet.db.db, { url, eventTypes: ['cli.msg'] })).id;
  waiting = (await insertEndpoint(fleet.db.db, { url, eventTypes: ['cli.msg'] })).id;
  const sent = await fleet.producer.send({ eventType: 'cli.msg', payload: { invoice: 'in_1' } });
  messageId = sent.id;
  const at = Date.now() - 60_000;
  await fleet.db.db.insert(attempts).values([
    {
      messageId,
      endpointId: delivered,
      attemptNumber: 1,
      attemptedAt: new Date(at),
      outcome: 'retrying',
      statusCode: 503,
      durationMs: 41,
      error: 'HTTP 503 Service Unavailable',
    },
    {
      messageId,
      endpointId: delivered,
      attemptNumber: 2,
      attemptedAt: new Date(at + 5000),
      outcome: 'succeeded',
      statusCode: 200,
      durationMs: 12,
    },
  ]);
  // The fan-out ran and was removed by its retention; the other delivery was postponed.
  await fleet.producer.messagesQueue.remove(messageJobId(messageId));
  await queue.add(
    RETRY_JOB,
    { messageId, endpointId: waiting, enqueuedAtMs: Date.now() },
    { jobId: deliveryJobId(messageId, waiting), delay: 3_600_000 },
  );
});
afterAll(async () => {
  await fleet.close();
});

describe('hookfleet messages show', () => {
  it('prints the message as GET /v1/messages/:id does with --json', async () => {
    const shown = await hookfleet('messages', 'show', messageId, '--json');
    expect(shown.code, shown.stderr).toBe(0);
    const view = messageSchema.parse(JSON.parse(shown.stdout));
    expect(view).toMatchObject({
      id: messageId,
      eventType: 'cli.msg',
      payload: { invoice: 'in_1' },
    });
    const byEndpoint = new Map(view.deliveries.map((d) => [d.endpointId, d]));
    expect(byEndpoint.get(delivered)).toMatchObject({
      status: 'succeeded',
      attempts: [
        { attemptNumber: 1, outcome: 'retrying', statusCode: 503, durationMs: 41 },
        { attemptNumber: 2, outcome: 'succeeded', statusCode: 200, durationMs: 12 },
      ],
    });
    expect(byEndpoint.get(waiting)).toMatchObject({ status: 'queued', attempts: [] });
  });

  it('prints each delivery with its attempts: time, outcome, status, duration, error', async () => {
    const shown = await hookfleet('messages', 'show', messageId);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^message\s+msg_\w+$/m);
    expect(shown.stdout).toMatch(/^payload\s+\{"invoice":"in_1"\}$/m);
    expect(shown.stdout).toContain(`${delivered}: succeeded (2 attempts)`);
    expect(shown.stdout).toContain(`${waiting}: queued (0 attempts)`);
    expect(shown.stdout).toMatch(/^#\s+TIME\s+OUTCOME\s+STATUS\s+DURATION\s+ERROR$/m);
    expect(shown.stdout).toMatch(
      /^1\s+\d{4}-\S+\s+retrying\s+503\s+41 ms\s+HTTP 503 Service Unavailable$/m,
    );
    expect(shown.stdout).toMatch(/^2\s+\d{4}-\S+\s+succeeded\s+200\s+12 ms$/m);
  });
});

describe('hookfleet messages redeliver', () => {
  it('re-enqueues a finished delivery and leaves a queued one alone', async () => {
    const result = await hookfleet('messages', 'redeliver', messageId, '--json');
    expect(result.code, result.stderr).toBe(0);
    const body = redeliverResponse.parse(JSON.parse(result.stdout));
    const actions = Object.fromEntries(body.redeliveries.map((r) => [r.endpointId, r]));
    expect(actions[delivered]).toMatchObject({ action: 'enqueued' });
    expect(actions[waiting]).toMatchObject({ action: 'pending' });
    const job = await queue.getJob(actions[delivered]!.jobId);
    expect(job?.data).toEqual({
      messageId,
      endpointId: delivered,
      enqueuedAtMs: expect.any(Number),
    });
  });

  it('redelivers to the --endpoint given only, and prints a table', async () => {
    const result = await hookfleet('messages', 'redeliver', messageId, '--endpoint', waiting);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^ENDPOINT\s+ACTION\s+JOB$/m);
    expect(result.stdout).toMatch(new RegExp(`^${waiting}\\s+pending\\s+`, 'm'));
    expect(result.stdout).not.toContain(delivered);
  });

  it('--help lists the actions, flags and environment variables', async () => {
    const help = await hookfleet('messages', '--help');
    expect(help.code).toBe(0);
    for (const word of [
      'show <id>',
      'redeliver <id>',
      '--endpoint',
      '--json',
      'DATABASE_URL',
      'REDIS_URL',
    ]) {
      expect(help.stdout).toContain(word);
    }
  });

  // Each case is a Node process of its own that changes nothing; run side by side they take a
  // few seconds rather than one or two each (most of a run is Node and tsx starting).
  it.concurrent.each([
    [['messages'], 2, /expected an action: show, redeliver/],
    [['messages', 'show'], 2, /show: expected a message id/],
    [['messages', 'frob', 'msg_x'], 2, /unknown action 'frob'/],
    [['messages', 'show', 'msg_x', '--endpoint', 'ep_x'], 2, /--endpoint goes with redeliver/],
    [['messages', 'show', 'msg_missing'], 3, /no message msg_missing/],
    [['messages', 'redeliver', 'msg_missing'], 3, /no message msg_missing/],
  ])('exits with a one-line error for %j (exit code %i)', async (args, code, message) => {
    expectOneLineError(await hookfleet(...args), code, message);
  });

  it('refuses an --endpoint the message was not sent to (exit code 2)', async () => {
    const result = await hookfleet('messages', 'redeliver', messageId, '--endpoint', 'ep_stranger');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ep_stranger was not a recipient of msg_/);
  });

  it('exits 1 with one line when Redis cannot be reached', async () => {
    const result = await runHookfleet(fleet.config, ['messages', 'redeliver', messageId], {
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^hookfleet: messages redeliver: cannot reach Redis within 3 s/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
