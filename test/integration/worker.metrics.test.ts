import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { deliveryJobId } from '../../src/jobs.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { createTestFleet, TEST_ENV, type TestFleet } from '../helpers/testFleet.js';
import { TEST_REDIS_URL } from '../helpers/testRedis.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/workerProcess.js';
import { freePort } from '../helpers/freePort.js';

let fleet: TestFleet;
let receiver: Receiver;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  fleet = await createTestFleet();
  receiver = await startReceiver();
});
afterAll(async () => {
  await worker?.stop('SIGTERM');
  await receiver.close();
  await fleet.close();
});

describe('hookfleet worker with HOOKFLEET_METRICS_PORT', () => {
  it('serves its own delivery metrics at /metrics', async () => {
    const port = await freePort();
    worker = await startWorkerProcess({
      ...TEST_ENV,
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: fleet.config.databaseUrl!,
      HOOKFLEET_QUEUE_PREFIX: fleet.config.queuePrefix,
      HOOKFLEET_METRICS_PORT: String(port),
      LOG_LEVEL: 'info', // startWorkerProcess waits for the 'worker started' line
    });
    const endpoint = await insertEndpoint(fleet.db.db, { url: receiver.url });
    const sent = await fleet.producer.deliver(endpoint.id, { hello: 'metrics' });
    expect(await fleet.waitForDelivery(deliveryJobId(sent.id, endpoint.id))).toEqual({
      state: 'completed',
    });

    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('hookfleet_deliveries_total{outcome="succeeded"} 1');
    expect(text).toContain('hookfleet_attempt_duration_seconds_bucket');
    // The endpoint's row was read once (then cached); whether pings came back yet depends on timing.
    expect(text).toContain('hookfleet_endpoint_rows_read_total 1');
    expect(text).toMatch(/hookfleet_endpoint_changes_heard [01]/);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  });
});
