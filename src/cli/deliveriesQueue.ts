import type { Config } from '../config.js';
import { HookfleetError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import { closeShardedQueue, openMessageQueues, type ShardedQueue } from '../queueShards.js';
import { createProducerRedis, redisTargetVariable, waitUntilRedisReady } from '../redis.js';

/** How long a command waits for Redis before it reports it unreachable (exit code 1). */
export const CLI_REDIS_WAIT_MS = 3000;

export interface DeliveriesQueue {
  queue: ShardedQueue<DeliveryJobData>;
  /** The `messages` queue on the same connection, to tell whether a fan-out is still on its way. */
  messagesQueue: ShardedQueue;
  /** Closes the queues and their connection. */
  close(): Promise<void>;
}

/**
 * The `deliveries` queue on a connection of its own, for commands that redeliver. Fails with
 * `redis_unavailable` (one line, no URL: it may hold a password) when Redis does not answer
 * within CLI_REDIS_WAIT_MS, rather than hanging while ioredis reconnects.
 */
export async function openDeliveriesQueue(
  config: Config,
  command: string,
): Promise<DeliveriesQueue> {
  const redis = createProducerRedis(config.redis, 'hookfleet:cli');
  // Failed connection attempts are reported once, below; ioredis would print each of them.
  redis.on('error', () => {});
  if (!(await waitUntilRedisReady(redis, CLI_REDIS_WAIT_MS))) {
    redis.disconnect();
    throw new HookfleetError(
      'redis_unavailable',
      `${command}: cannot reach Redis within ${CLI_REDIS_WAIT_MS / 1000} s (check ${redisTargetVariable(config.redis)})`,
      503,
    );
  }
  const { deliveries, messages } = openMessageQueues(config, redis);
  for (const shard of [...deliveries.shards, ...messages.shards]) shard.on('error', () => {});
  const queue = deliveries as ShardedQueue<DeliveryJobData>;
  const messagesQueue = messages;
  return {
    queue,
    messagesQueue,
    async close() {
      await closeShardedQueue(messagesQueue);
      await closeShardedQueue(queue);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
