import { EventEmitter } from 'node:events';
import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import {
  boardName,
  messageIdOfJob,
  openShardedQueue,
  shardOf,
  shardPrefix,
  singleQueuePrefix,
} from '../../src/queueShards.js';

const node = loadConfig({});
const cluster = loadConfig({ REDIS_CLUSTER_NODES: 'redis-1:7000' });

describe('queue shards', () => {
  it('keeps today’s key names on one node with one shard', () => {
    expect(shardPrefix(node, 'messages', 0)).toBe('hookfleet');
    expect(singleQueuePrefix(node, 'maintenance')).toBe('hookfleet');
    expect(boardName(node, 'deliveries', 0)).toBe('deliveries');
  });

  it('gives every other shard, and every shard on a cluster, a hash tag of its own', () => {
    expect(shardPrefix(node, 'messages', 3)).toBe('hookfleet:{messages-3}');
    expect(shardPrefix(cluster, 'messages', 0)).toBe('hookfleet:{messages-0}');
    expect(shardPrefix(cluster, 'deliveries', 0)).toBe('hookfleet:{deliveries-0}');
    expect(singleQueuePrefix(cluster, 'maintenance')).toBe('hookfleet:{maintenance}');
    expect(boardName(cluster, 'deliveries', 2)).toBe('shard2-deliveries');
  });

  it('puts a message and all its jobs in one shard, spread evenly over the shards', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardOf(`msg_${i.toString(36)}x${i * 7919}`, 8)]! += 1;
    for (const count of counts) expect(count).toBeGreaterThan(800);
    expect(shardOf('msg_abc', 1)).toBe(0);
    expect(messageIdOfJob('msg_abc.ep_1.rkey')).toBe('msg_abc');
    expect(messageIdOfJob('msg_abc')).toBe('msg_abc');
  });

  it('reads HOOKFLEET_QUEUE_SHARDS and HOOKFLEET_WORKER_SHARDS', () => {
    expect(node.queueShards).toBe(1);
    expect(node.workerShards).toBeUndefined();
    const config = loadConfig({ HOOKFLEET_QUEUE_SHARDS: '8', HOOKFLEET_WORKER_SHARDS: '0-2,5,2' });
    expect(config.queueShards).toBe(8);
    expect(config.workerShards).toEqual([0, 1, 2, 5]);
    expect(() => loadConfig({ HOOKFLEET_QUEUE_SHARDS: '0' })).toThrow(/HOOKFLEET_QUEUE_SHARDS/);
    expect(() => loadConfig({ HOOKFLEET_WORKER_SHARDS: '3-1' })).toThrow(/HOOKFLEET_WORKER_SHARDS/);
  });

  it('refuses a hash tag in the prefix on a cluster, where it would put every key on one node', () => {
    expect(loadConfig({ HOOKFLEET_QUEUE_PREFIX: '{hookfleet}' }).queuePrefix).toBe('{hookfleet}');
    const load = () =>
      loadConfig({ REDIS_CLUSTER_NODES: 'redis-1:7000', HOOKFLEET_QUEUE_PREFIX: '{hookfleet}' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/HOOKFLEET_QUEUE_PREFIX must not hold a \{hash tag\}/);
  });

  it('hands one error listener to every shard', () => {
    // Shards stand in for Queues here: only their `error` events matter, and no I/O is wanted.
    const backend = {
      kind: 'redis',
      queue: () => new EventEmitter() as unknown as Queue,
    } as unknown as Parameters<typeof openShardedQueue>[0];
    const queue = openShardedQueue(backend, node, 'messages', 3, 'fan-out');
    const seen: string[] = [];
    expect(queue.on('error', (error) => seen.push(error.message))).toBe(queue);
    queue.shards.forEach((shard, n) => shard.emit('error', new Error(`shard ${n}`)));
    expect(seen).toEqual(['shard 0', 'shard 1', 'shard 2']);
  });
});
