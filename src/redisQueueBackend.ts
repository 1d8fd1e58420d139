/**
 * The production queue backend: BullMQ on Redis, one connection per role (redis.ts says how each
 * behaves), made on first use and closed by close(); each Worker gets a connection of its own.
 */
import { Queue, QueueEventsProducer, Worker } from 'bullmq';
import type { Config } from './config.js';
import type { ConnectionRole, RedisQueueBackend } from './queueBackend.js';
import {
  createLimitsRedis,
  createProducerRedis,
  createWorkerRedis,
  describeRedisTarget,
  quitRedis,
  waitUntilRedisReady,
  type RedisClient,
  type RedisTarget,
} from './redis.js';

const MAKERS: Record<ConnectionRole, (target: RedisTarget, name: string) => RedisClient> = {
  producer: createProducerRedis,
  'fan-out': createWorkerRedis,
  queues: createWorkerRedis,
  limits: createLimitsRedis,
};

/** `onError` hears every connection's errors (callers see theirs through their commands). */
export function createRedisQueueBackend(
  config: Config,
  producerRedis?: RedisClient,
  onError: (error: Error) => void = () => {},
): RedisQueueBackend {
  const { redis: target, queuePrefix } = config;
  const connections = new Map<ConnectionRole, RedisClient>();
  if (producerRedis) connections.set('producer', producerRedis);
  /** What close() quits: every connection made here, none given. */
  const owned: RedisClient[] = [];
  const redis = (role: ConnectionRole): RedisClient => {
    let connection = connections.get(role);
    if (!connection) {
      connection = MAKERS[role](target, `hookfleet:${role}`);
      // Unlistened, ioredis prints each failed reconnection with its stack.
      connection.on('error', onError);
      connections.set(role, connection);
      owned.push(connection);
    }
    return connection;
  };
  let wait: Promise<boolean> | undefined;

  return {
    kind: 'redis',
    label: describeRedisTarget(target),
    redis,
    queue: <D>(name: string, role: ConnectionRole, prefix = queuePrefix) =>
      // A Queue on a connection it does not own opens none of its own.
      new Queue<D>(name, { connection: redis(role), prefix }),
    worker(name, processor, options) {
      const { connectionName, prefix = queuePrefix, ...rest } = options;
      const connection = createWorkerRedis(target, `hookfleet:${connectionName}`);
      owned.push(connection);
      return new Worker(name, processor, { ...rest, connection, prefix });
    },
    queueEventsProducer: (name, prefix = queuePrefix) =>
      new QueueEventsProducer(name, { connection: redis('queues'), prefix }),
    ready: () => redis('producer').status === 'ready',
    async whyUnavailable(waitMs) {
      const connection = redis('producer');
      if (connection.status === 'ready') return undefined;
      wait ??= waitUntilRedisReady(connection, waitMs).finally(() => {
        wait = undefined;
      });
      if (await wait) return undefined;
      return `no connection (${connection.status}) after ${waitMs} ms`;
    },
    async ping() {
      await redis('producer').ping();
    },
    async close() {
      await Promise.all(owned.map(quitRedis));
    },
  };
}
