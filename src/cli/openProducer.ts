import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { Producer } from '../producer/producer.js';
import { createQueueBackend, type QueueBackend, type QueueBackendKind } from '../queueBackend.js';

/**
 * The queue backend of a long-lived command (`hookfleet start`, `api`, `worker`) and the Producer
 * an api process sends with, on it. Both are registered with `life`, the backend first, so it
 * closes after everything that uses it (the api's health check and Bull Board use the producer's
 * queues). A Redis outage is logged once per 30 s, not per reconnect attempt.
 */
export function openQueueBackend(
  life: Lifecycle,
  config: Config,
  kind: QueueBackendKind,
  databaseUrl: string,
  logger: Logger,
): QueueBackend {
  return life.add('queue backend', createQueueBackend(config, kind, { databaseUrl, logger }), (b) =>
    b.close(),
  );
}

export function openProducer(
  life: Lifecycle,
  config: Config,
  dbClient: DbClient,
  backend: QueueBackend,
  logger: Logger,
): Producer {
  return life.add('producer', new Producer({ config, dbClient, backend, logger }), (p) =>
    p.close(),
  );
}
