import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A queue prefix of this test file's own, so files can run in parallel on one Redis. */
export function testQueuePrefix(): string {
  return `hft-${randomBytes(5).toString('hex')}`;
}

/** Deletes every key under `prefix`. */
export async function deleteQueueKeys(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

/**
 * The names of the commands `redis` sends from now on, in order: what a test of batching counts.
 * Empty it to start again.
 */
export function recordCommandsSent(redis: Redis): string[] {
  const sent: string[] = [];
  const sendCommand = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    sent.push(command.name);
    return sendCommand(command, stream);
  };
  return sent;
}
