/**
 * Housekeeping over a test database and a queue prefix (a new one unless given), for tests that
 * run one pass of it at a time (`run()`); `close()` stops it and leaves the prefix's keys.
 */
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createQueueBackend } from '../../src/queueBackend.js';
import { createHousekeeping, type Housekeeping } from '../../src/worker/housekeeping.js';
import type { TestDatabase } from './testDatabase.js';
import { TEST_REDIS_URL, testQueuePrefix } from './testRedis.js';

export interface HousekeepingRig {
  prefix: string;
  housekeeping: Housekeeping;
  close(): Promise<void>;
}

export function openHousekeeping(db: TestDatabase, prefix = testQueuePrefix()): HousekeepingRig {
  const config = loadConfig({
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: db.url,
    HOOKFLEET_QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
  });
  const backend = createQueueBackend(config, 'redis');
  const housekeeping = createHousekeeping({
    config,
    logger: createLogger({ logLevel: 'silent' }),
    dbClient: db,
    backend,
  });
  return {
    prefix,
    housekeeping,
    async close() {
      await housekeeping.close();
      await backend.close();
    },
  };
}
