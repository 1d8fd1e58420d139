import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { findEndpoint, insertEndpoint } from '../../src/db/endpoints.js';
import { MAINTENANCE_QUEUE } from '../../src/jobs.js';
import { createLogger } from '../../src/logger.js';
import { HOUSEKEEPING_SCHEDULER_ID } from '../../src/worker/housekeeping.js';
import {
  FAILING_SWEEP_JOB,
  FAILING_SWEEP_SCHEDULER_ID,
  SWEEP_JOB,
  SWEEP_SCHEDULER_ID,
  startMaintenance,
  type RunningMaintenance,
  type SweepJobResult,
} from '../../src/worker/maintenance.js';
import { createTestDatabase, type TestDatabase } from '../helpers/testDatabase.js';
import { TEST_REDIS_URL, deleteQueueKeys, testQueuePrefix } from '../helpers/testRedis.js';

let db: TestDatabase;
let redis: Redis;
const opened: { close(): Promise<void> }[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  await redis.quit();
  await db.drop();
});
afterEach(async () => {
  for (const resource of opened.splice(0).reverse()) await resource.close();
  for (const prefix of prefixes.splice(0)) await deleteQueueKeys(prefix);
});

const logger = createLogger({ logLevel: 'silent' });

function setup(env: Record<string, string> = {}) {
  const prefix = testQueuePrefix();
  prefixes.push(prefix);
  const config = loadConfig({
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: db.url,
    HOOKFLEET_QUEUE_PREFIX: prefix,
    HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const queue = new Queue(MAINTENANCE_QUEUE, { connection: redis, prefix });
  opened.push(queue);
  return { config, prefix, queue };
}

async function start(config: ReturnType<typeof loadConfig>): Promise<RunningMaintenance> {
  const running = await startMaintenance({ config, logger, dbClient: db });
  opened.push(running);
  return running;
}

describe('startMaintenance', () => {
  it('registers one job scheduler however many processes start it', async () => {
    const { config, queue } = setup({
      HOOKFLEET_SWEEP_CRON: '30 4 * * *',
      HOOKFLEET_SWEEP_TZ: 'Europe/Berlin',
    });

    const [first] = await Promise.all([start(config), start(config), start(config)]);

    const schedulers = await queue.getJobSchedulers();
    // The stale sweep's, the failing sweep's and housekeeping's, one each.
    expect(schedulers.map((s) => s.key).sort()).toEqual(
      [FAILING_SWEEP_SCHEDULER_ID, HOUSEKEEPING_SCHEDULER_ID, SWEEP_SCHEDULER_ID].sort(),
    );
    expect(schedulers.find((s) => s.key === SWEEP_SCHEDULER_ID)).toMatchObject({
      key: SWEEP_SCHEDULER_ID,
      name: SWEEP_JOB,
      pattern: '30 4 * * *',
      tz: 'Europe/Berlin',
    });
    // The failing sweep runs hourly, whatever the stale sweep's pattern.
    expect(schedulers.find((s) => s.key === FAILING_SWEEP_SCHEDULER_ID)).toMatchObject({
      name: FAILING_SWEEP_JOB,
      pattern: '7 * * * *',
    });
    // One next run per scheduler, not one per process.
    const delayed = await queue.getDelayed();
    for (const id of [SWEEP_SCHEDULER_ID, FAILING_SWEEP_SCHEDULER_ID])
      expect(delayed.filter((job) => job.id!.startsWith(`repeat:${id}:`))).toHaveLength(1);
    await first.close();
    await first.close();
  });

  it("starts when another process has already created the scheduler's next run", async () => {
    const { config, prefix, queue } = setup({
      HOOKFLEET_SWEEP_CRON: '0 3 * * *',
      HOOKFLEET_SWEEP_TZ: 'UTC',
    });
    // The job of the next 03:00 UTC run exists and is not the scheduler's own delayed job,
    // which is how BullMQ sees a run another process created (and maybe started) a moment ago.
    const next = new Date();
    next.setUTCHours(3, 0, 0, 0);
    if (next.getTime() <= Date.now()) next.setUTCDate(next.getUTCDate() + 1);
    const runKey = `${prefix}:${MAINTENANCE_QUEUE}:repeat:${SWEEP_SCHEDULER_ID}:${next.getTime()}`;
    await redis.hset(runKey, 'name', SWEEP_JOB);
    await expect(
      queue.upsertJobScheduler(SWEEP_SCHEDULER_ID, { pattern: '0 3 * * *', tz: 'UTC' }),
    ).rejects.toThrow('job ID already exists');

    const running = await start(config);
    expect(running).toBeDefined();
  });

  it('runs the sweep once per period, in exactly one of the processes', async () => {
    // Every second, so the test sees runs without waiting for 03:00.
    const { config, prefix, queue } = setup({ HOOKFLEET_SWEEP_CRON: '* * * * * *' });
    const { id } = await insertEndpoint(db.db, { url: 'https://receiver.example/hook' });
    // Failed deliveries in its stale window: deactivated at once (an idle one would be probed).
    await db.sql`update endpoints set created_at = now() - interval '400 days',
      last_failure_at = now() - interval '10 days' where id = ${id}`;
    const events = new QueueEvents(MAINTENANCE_QUEUE, {
      connection: { url: TEST_REDIS_URL },
      prefix,
    });
    opened.push(events);
    await events.waitUntilReady();
    const completed: { jobId: string; returnvalue: unknown }[] = [];
    const firstTwo = new Promise<void>((resolve) => {
      events.on('completed', (event) => {
        if (!event.jobId.startsWith(`repeat:${SWEEP_SCHEDULER_ID}:`)) return;
        completed.push(event);
        if (completed.length === 2) resolve();
      });
    });

    await Promise.all([start(config), start(config), start(config)]);
    await firstTwo;

    expect((await findEndpoint(db.db, id))!).toMatchObject({
      active: false,
      deactivationReason: 'stale',
    });
    const results = completed.map((event) => event.returnvalue as SweepJobResult);
    expect(results.map((r) => r.deactivated)).toEqual([1, 0]);
    // Each run is its own job, one per period: distinct ids, both from the one scheduler.
    expect(new Set(completed.map((e) => e.jobId)).size).toBe(2);
    for (const { jobId } of completed)
      expect(jobId).toMatch(new RegExp(`^repeat:${SWEEP_SCHEDULER_ID}:\\d+$`));
    const periods = completed.map(({ jobId }) => Number(jobId.split(':').pop()));
    expect(periods[1]! - periods[0]!).toBeGreaterThanOrEqual(1000);
    expect(await queue.getJobSchedulersCount()).toBe(3);
  });
});
