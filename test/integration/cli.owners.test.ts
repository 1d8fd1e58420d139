import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attempts, messages } from '../../src/db/schema.js';
import { expectOneLineError, runHookfleet } from '../helpers/hookfleetCli.js';
import { createTestFleet, type TestFleet } from '../helpers/testFleet.js';

// Each `hookfleet` run is a child process (tsx): several seconds each on a busy machine.
let fleet: TestFleet;
const hookfleet = (...args: string[]) => runHookfleet(fleet.config, args);

beforeAll(async () => {
  fleet = await createTestFleet();
});
afterAll(async () => {
  await fleet.close();
});

async function add(...args: string[]): Promise<{ id: string; ownerId: string | null }> {
  const result = await hookfleet('endpoints', 'add', 'http://127.0.0.1:9/hooks', ...args, '--json');
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { id: string; ownerId: string | null };
}

describe('hookfleet --owner', () => {
  it('adds endpoints for an owner, lists one owner, and sends to that owner only', async () => {
    const [a, b, none] = await Promise.all([
      add('--owner', 'org_a'),
      add('--owner', 'org_b'),
      add(),
    ]);
    expect([a.ownerId, b.ownerId, none.ownerId]).toEqual(['org_a', 'org_b', null]);

    const listed = JSON.parse(
      (await hookfleet('endpoints', 'list', '--owner', 'org_a', '--json')).stdout,
    ) as { id: string }[];
    expect(listed.map((e) => e.id)).toEqual([a.id]);
    const table = await hookfleet('endpoints', 'list');
    expect(table.stdout).toMatch(/OWNER/);
    expect(table.stdout).toContain('org_b');

    const forB = await hookfleet('send', 'order.paid', '{}', '--owner', 'org_b', '--json');
    expect(forB.code, forB.stderr).toBe(0);
    expect(JSON.parse(forB.stdout)).toMatchObject({ endpointIds: [b.id] });
    const shown = await hookfleet(
      'messages',
      'show',
      (JSON.parse(forB.stdout) as { id: string }).id,
    );
    expect(shown.stdout).toMatch(/OWNER\s+org_b/i);
    const forNone = await hookfleet('send', 'order.paid', '{}', '--json');
    expect(JSON.parse(forNone.stdout)).toMatchObject({ endpointIds: [none.id] });
  }, 120_000);

  it('lists the failed deliveries of one owner with failed list --owner', async () => {
    const { db } = fleet.db;
    const failed = async (ownerId: string | null, n: number) => {
      const id = `msg_owners${n}`;
      await db
        .insert(messages)
        .values({ id, eventType: 'order.paid', ownerId, payload: {}, endpointIds: ['ep_x'] });
      await db.insert(attempts).values({
        messageId: id,
        endpointId: 'ep_x',
        attemptNumber: 1,
        attemptedAt: new Date(),
        outcome: 'failed',
        durationMs: 5,
      });
      return id;
    };
    const ofA = await failed('org_a', 1);
    await failed('org_b', 2);
    await failed(null, 3);
    const listed = await hookfleet('failed', 'list', '--owner', 'org_a', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { messageId: string }[]).map((d) => d.messageId)).toEqual([
      ofA,
    ]);
  }, 60_000);

  it('refuses an owner id outside the safe set with one line saying which characters', async () => {
    const [badOwner, misplaced, send] = await Promise.all([
      hookfleet('endpoints', 'add', 'http://127.0.0.1:9/hooks', '--owner', 'a b'),
      hookfleet('endpoints', 'show', 'ep_x', '--owner', 'org_a'),
      hookfleet('send', 'order.paid', '{}', '--owner', 'a/b'),
    ]);
    expectOneLineError(badOwner, 2, /--owner takes 1 to 128 letters, digits and _ - \. : @/);
    expectOneLineError(misplaced, 2, /--owner applies to list and add/);
    expect(send.code).not.toBe(0);
    expect(send.stderr).toMatch(/ownerId/);
  }, 60_000);
});
