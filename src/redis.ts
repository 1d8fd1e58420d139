import { Redis } from 'ioredis';

/**
 * How long a producer waits for a Redis connection that is (re)connecting before it tells its
 * caller Redis is unavailable, and (as `commandTimeout`) for the answer to a command sent on a
 * connection that stopped answering without closing (a network partition). Issue #7.
 */
export const PRODUCER_REDIS_WAIT_MS = 1000;
export const PRODUCER_REDIS_COMMAND_TIMEOUT_MS = 3000;

/**
 * Connection for BullMQ workers: BullMQ requires `maxRetriesPerRequest: null` on connections
 * that block, so a worker waits out a Redis restart instead of crashing.
 */
export function createWorkerRedis(redisUrl: string, name: string): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: null, connectionName: name });
}

/** How long a worker waits for the per-endpoint limits before delivering without them. */
export const LIMITS_REDIS_COMMAND_TIMEOUT_MS = 1000;

/**
 * Connection for the per-endpoint limits (delivery/endpointLimits.ts). Every delivery makes two
 * calls on it, so calls made in the same tick go out as one pipeline; each is bounded by
 * `commandTimeout`, after which the worker delivers without limits rather than wait for Redis.
 */
export function createLimitsRedis(redisUrl: string, name: string): Redis {
  return new Redis(redisUrl, {
    maxRetriesPerRequest: 1,
    commandTimeout: LIMITS_REDIS_COMMAND_TIMEOUT_MS,
    enableAutoPipelining: true,
    connectionName: name,
  });
}

/**
 * Connection for producers: a caller facing a Redis outage gets an error it can act on rather
 * than a hung request. `enableOfflineQueue: false` makes a command fail at once while the
 * connection is down instead of waiting in memory to be sent on reconnection (which would both
 * hold the caller and, after it gave up, enqueue what it was told had failed); `commandTimeout`
 * bounds a command sent on a connection that stopped answering. ioredis reconnects by itself.
 */
export function createProducerRedis(redisUrl: string, name: string): Redis {
  return new Redis(redisUrl, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: PRODUCER_REDIS_COMMAND_TIMEOUT_MS,
    connectionName: name,
  });
}

/**
 * Resolves true once `redis` is ready for commands, false if it is not within `timeoutMs`
 * (Redis down or restarting) or was closed on purpose. Adds two listeners while it waits, so
 * callers that may wait in numbers should share one wait.
 */
export function waitUntilRedisReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  if (redis.status === 'end') return Promise.resolve(false);
  if (redis.status === 'wait') redis.connect().catch(() => {}); // lazyConnect: errors surface as 'end' or the timeout
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      redis.off('end', done);
      resolve(redis.status === 'ready');
    };
    const timer = setTimeout(done, timeoutMs);
    redis.on('ready', done);
    redis.on('end', done);
  });
}

/**
 * Closes a connection for a Lifecycle: QUIT, so replies already on their way arrive first, or at
 * once when QUIT cannot be sent (connection down).
 */
export async function quitRedis(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}
