import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryJobId } from '../../src/jobs.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';
import { TEST_REDIS_URL } from '../helpers/testRedis.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
let fleet: TestFleet;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `hookfleet` CLI (through tsx) against this file's database and queue prefix. */
function hookfleet(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      {
        env: {
          ...process.env,
          DATABASE_URL: fleet.config.databaseUrl,
          REDIS_URL: TEST_REDIS_URL,
          HOOKFLEET_QUEUE_PREFIX: fleet.config.queuePrefix,
          HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
          LOG_LEVEL: 'silent',
        },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  fleet = await createTestFleet();
});
afterAll(async () => {
  await fleet.close();
});

describe('hookfleet endpoints and send', () => {
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
    const job = await fleet.producer.deliveriesQueue.getJob(deliveryJobId(sent.id, endpoint.id));
    expect(job?.data.body).toBe('{"hello":"cli"}');

    const tested = JSON.parse(
      (await hookfleet('endpoints', 'test', endpoint.id, '--json')).stdout,
    ) as {
      endpointIds: string[];
    };
    expect(tested.endpointIds).toEqual([endpoint.id]);
  });

  it.each([
    [['endpoints', 'frob'], /unknown action 'frob'/],
    [['endpoints', 'add'], /expected a URL/],
    [['endpoints', 'add', 'http://10.0.0.1/x'], /10\.0\.0\.1 is a private address/],
    [['endpoints', 'enable', 'ep_missing'], /no endpoint ep_missing/],
    [['send', 'cli.test', '{not json'], /the payload is not JSON/],
    [['send', 'cli.test'], /expected <eventType> <json\|@file>/],
    [['endpoints', 'list', '--colour'], /Unknown option '--colour'/],
  ])('exits non-zero with a one-line error for %j', async (args, message) => {
    const result = await hookfleet(...args);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
