import { Redis } from 'ioredis';

/**
 * Connection for BullMQ workers: BullMQ requires `maxRetriesPerRequest: null` on connections
 * that block, so a worker waits out a Redis restart instead of crashing.
 */
export function createWorkerRedis(redisUrl: string, name: string): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: null, connectionName: name });
}

/**
 * Connection for producers: a command fails after one retry instead of queueing without bound,
 * so a caller facing a Redis outage gets an error it can act on rather than a hung request.
 */
export function createProducerRedis(redisUrl: string, name: string): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: 1, connectionName: name });
}
