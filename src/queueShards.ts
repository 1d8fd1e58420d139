/**
 * The `messages` and `deliveries` queues split over HOOKFLEET_QUEUE_SHARDS shards, so that on a
 * Redis Cluster their keys spread over the masters. BullMQ runs each queue's Lua scripts over
 * many keys, which a cluster accepts only when they share a slot: each shard is a queue of its
 * own whose BullMQ prefix carries a hash tag, `<prefix>:{messages-3}`, and a message, its
 * fan-out and every delivery job of it (retries, postponements, redeliveries, replays) live in
 * the shard its id hashes to.
 *
 *   shard 0 on one Redis node   prefix `<prefix>`, today's key names (jobs queued before sharding
 *                               existed stay where workers look)
 *   any other shard, or any     prefix `<prefix>:{<queue>-<n>}`
 *   shard on a cluster
 *
 * Changing the number of shards loses nothing: every process that writes or serves the queues
 * records the largest number of shards it was configured with under `<prefix>:queue-shards`,
 * and workers serve every shard up to that recorded maximum (or only HOOKFLEET_WORKER_SHARDS when
 * set), so jobs left on shards a smaller setting no longer writes to are still delivered.
 */
import type { Queue } from 'bullmq';
import type { Config } from './config.js';
import { DELIVERIES_QUEUE, MESSAGES_QUEUE } from './jobs.js';
import type { ConnectionRole, QueueBackend } from './queueBackend.js';
import { isCluster } from './redis.js';

/** A queue split over shards: one BullMQ Queue per shard, in shard order. */
export interface ShardedQueue<T = unknown> {
  readonly name: string;
  readonly shards: readonly Queue<T>[];
  /** The shard a message's jobs live in. */
  forMessage(messageId: string): Queue<T>;
  /** The shard of a job of this queue (its id starts with its message's id). */
  forJobId(jobId: string): Queue<T>;
  /**
   * Attaches `listener` to every shard's `error` event; returns this queue. A Queue without one
   * makes Node print each failed reconnection attempt (or throw on the first error).
   */
  on(event: 'error', listener: (error: Error) => void): this;
}

/** The settings sharding reads (a part of Config). */
export type ShardSettings = Pick<Config, 'redis' | 'queuePrefix' | 'queueShards'>;

/** FNV-1a over the id's UTF-16 units: stable across processes and versions, and cheap. */
function hashId(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The shard (0 … shards-1) a message's jobs live in. */
export function shardOf(messageId: string, shards: number): number {
  return shards <= 1 ? 0 : hashId(messageId) % shards;
}

/** The message id a job id starts with: fan-outs are named after it, deliveries `<message>.<…>`. */
export function messageIdOfJob(jobId: string): string {
  const dot = jobId.indexOf('.');
  return dot === -1 ? jobId : jobId.slice(0, dot);
}

/** BullMQ prefix of one shard of a queue (see the table above). */
export function shardPrefix(
  settings: Pick<Config, 'redis' | 'queuePrefix'>,
  queueName: string,
  shard: number,
): string {
  if (shard === 0 && !isCluster(settings.redis)) return settings.queuePrefix;
  return `${settings.queuePrefix}:{${queueName}-${shard}}`;
}

/**
 * BullMQ prefix of a queue that is not sharded (`maintenance`): its own hash tag on a cluster,
 * today's prefix on one node.
 */
export function singleQueuePrefix(
  settings: Pick<Config, 'redis' | 'queuePrefix'>,
  queueName: string,
): string {
  if (!isCluster(settings.redis)) return settings.queuePrefix;
  return `${settings.queuePrefix}:{${queueName}}`;
}

/**
 * How Bull Board names a shard: as today on one node with one shard, else `shard<n>-<queue>`
 * (Bull Board tells queues apart by name, and every shard's queue is called `messages` or
 * `deliveries`).
 */
export function boardName(
  settings: Pick<Config, 'redis' | 'queuePrefix'>,
  queueName: string,
  shard: number,
): string {
  return `${boardPrefix(settings, queueName, shard)}${queueName}`;
}

/** What Bull Board's adapter puts before the queue's name (see boardName). */
export function boardPrefix(
  settings: Pick<Config, 'redis' | 'queuePrefix'>,
  queueName: string,
  shard: number,
): string {
  return shardPrefix(settings, queueName, shard) === settings.queuePrefix ? '' : `shard${shard}-`;
}

/**
 * How many shards a queue has on `backend`: HOOKFLEET_QUEUE_SHARDS on Redis; exactly one on
 * PostgreSQL, which has one table for every queue and ignores prefixes.
 */
export function shardCount(
  backend: Pick<QueueBackend, 'kind'>,
  settings: Pick<Config, 'queueShards'>,
): number {
  return backend.kind === 'postgres' ? 1 : settings.queueShards;
}

/**
 * Shards 0 … count-1 of a queue, each a Queue the backend makes on its connection of `role`
 * (with the shard's prefix); on PostgreSQL one shard whatever `count` says.
 */
export function openShardedQueue<T>(
  backend: QueueBackend,
  settings: Pick<Config, 'redis' | 'queuePrefix'>,
  name: string,
  count: number,
  role: ConnectionRole,
): ShardedQueue<T> {
  const shards = Array.from({ length: backend.kind === 'postgres' ? 1 : count }, (_, shard) =>
    backend.queue<T>(name, role, shardPrefix(settings, name, shard)),
  );
  const forMessage = (messageId: string) => shards[shardOf(messageId, shards.length)]!;
  return withErrorListener({
    name,
    shards,
    forMessage,
    forJobId: (jobId) => forMessage(messageIdOfJob(jobId)),
  });
}

/** Adds `on('error', …)` to a sharded queue's parts. */
function withErrorListener<T>(queue: Omit<ShardedQueue<T>, 'on'>): ShardedQueue<T> {
  const sharded: ShardedQueue<T> = {
    ...queue,
    on(_event, listener) {
      for (const shard of queue.shards) shard.on('error', listener);
      return sharded;
    },
  };
  return sharded;
}

/** The `messages` and `deliveries` queues of a producer or tool, on the backend's `role`. */
export function openMessageQueues(
  backend: QueueBackend,
  settings: ShardSettings,
  role: ConnectionRole = 'producer',
): { messages: ShardedQueue; deliveries: ShardedQueue } {
  const count = shardCount(backend, settings);
  return {
    messages: openShardedQueue(backend, settings, MESSAGES_QUEUE, count, role),
    deliveries: openShardedQueue(backend, settings, DELIVERIES_QUEUE, count, role),
  };
}

/** Closes every shard's Queue (not the connection they share). */
export async function closeShardedQueue<T>(queue: ShardedQueue<T>): Promise<void> {
  await Promise.all(queue.shards.map((q) => q.close()));
}

/** Where the largest number of shards ever configured is kept (one key, any slot). */
export function queueShardsKey(settings: Pick<Config, 'queuePrefix'>): string {
  return `${settings.queuePrefix}:queue-shards`;
}

/** Raises the recorded maximum to `shards` if below; returns the maximum now recorded. */
const RECORD_MAX = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
  redis.call('SET', KEYS[1], wanted)
  return wanted
end
return current`;

/**
 * Records that `settings.queueShards` shards are in use (the largest number ever configured is
 * kept) and returns the largest number recorded: the shards that may hold jobs.
 */
export async function recordQueueShards(
  backend: QueueBackend,
  settings: Pick<Config, 'queuePrefix' | 'queueShards'>,
  role: ConnectionRole = 'producer',
): Promise<number> {
  // PostgreSQL has one shard and nothing to record.
  if (backend.kind === 'postgres') return 1;
  const redis = backend.redis(role);
  // One shard writes nothing: a fleet that never sharded has no key, as before shards existed.
  const recorded =
    settings.queueShards === 1
      ? await redis.get(queueShardsKey(settings))
      : await redis.eval(RECORD_MAX, 1, queueShardsKey(settings), settings.queueShards);
  return Math.max(settings.queueShards, Number(recorded ?? 0));
}

/** An unsharded Queue seen as a ShardedQueue of one shard (tools and tests that hold one Queue). */
export function oneShard<T>(queue: Queue<T>): ShardedQueue<T> {
  return withErrorListener({
    name: queue.name,
    shards: [queue],
    forMessage: () => queue,
    forJobId: () => queue,
  });
}
