import type { Config } from '../config.js';
import { HookfleetError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import { openQueueBackend } from '../queueBackend.js';
import { closeShardedQueue, openMessageQueues, type ShardedQueue } from '../queueShards.js';
import { redisTargetVariable } from '../redis.js';

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
 * The `deliveries` queue, for commands that redeliver, on the queue backend the fleet runs on
 * (queueBackend.ts: Redis, or PostgreSQL in trial mode). Fails with `redis_unavailable` (one
 * line, no URL: it may hold a password) when Redis does not answer within CLI_REDIS_WAIT_MS,
 * rather than hanging while ioredis reconnects.
 */
export async function openDeliveriesQueue(
  config: Config,
  command: string,
  databaseUrl: string,
): Promise<DeliveriesQueue> {
  const backend = await openQueueBackend(config, { databaseUrl });
  const why = await backend.whyUnavailable(CLI_REDIS_WAIT_MS);
  if (why !== undefined) {
    await backend.close();
    throw new HookfleetError(
      'redis_unavailable',
      `${command}: cannot reach Redis within ${CLI_REDIS_WAIT_MS / 1000} s (check ${redisTargetVariable(config.redis)})`,
      503,
    );
  }
  const { deliveries, messages } = openMessageQueues(backend, config);
  // A lost connection fails the command's own calls; BullMQ need not print each reconnection.
  deliveries.on('error', () => {});
  messages.on('error', () => {});
  const queue = deliveries as ShardedQueue<DeliveryJobData>;
  const messagesQueue = messages;
  return {
    queue,
    messagesQueue,
    async close() {
      await closeShardedQueue(messagesQueue);
      await closeShardedQueue(queue);
      await backend.close();
    },
  };
}
