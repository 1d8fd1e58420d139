import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { Producer } from '../producer/producer.js';
import { createProducerRedis, quitRedis } from '../redis.js';
import { logRepeatedErrors } from '../repeatedErrorLog.js';

/**
 * The Producer an api process sends with (`hookfleet api` and `start`), on a Redis connection of
 * its own that the api's health check and Bull Board share. Both are registered with `life`, so
 * they close after the server that uses them. A Redis outage is logged once per 30 s, not per
 * reconnect attempt.
 */
export function openProducer(
  life: Lifecycle,
  config: Config,
  dbClient: DbClient,
  logger: Logger,
): { producer: Producer; redis: ReturnType<typeof createProducerRedis> } {
  const redis = life.add('redis', createProducerRedis(config.redisUrl, 'hookfleet:api'), quitRedis);
  redis.on('error', logRepeatedErrors(logger, 'warn', 'redis connection error'));
  const producer = life.add('producer', new Producer({ config, dbClient, redis, logger }), (p) =>
    p.close(),
  );
  return { producer, redis };
}
