/**
 * Where the queues live, chosen once per process and passed to every part that makes BullMQ
 * objects (producer, worker, maintenance, api, cli), so none of them branches on it.
 *
 *   redis     the production set-up: BullMQ on Redis (REDIS_URL); every store a fleet shares
 *             (the endpoint limits, fan-out progress) is in Redis too (redisQueueBackend.ts)
 *   postgres  trial mode: BullMQ's own PostgreSQL backend on the database hookfleet already uses
 *             (postgresQueueBackend.ts). The queues are shared by every process on that
 *             database, but the endpoint limits and fan-out progress live in the memory of the
 *             process that delivers: meant for one `hookfleet start`, not a fleet.
 *
 * With neither HOOKFLEET_QUEUE_BACKEND nor REDIS_URL set (`auto`), the commands take Redis when
 * one answers at the default address, and PostgreSQL otherwise, so `npm start` works on a machine
 * with nothing but Node.js.
 */
import type { Processor, Queue, QueueEventsProducer, Worker, WorkerOptions } from 'bullmq';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { RedisClient } from './redis.js';
import { logRepeatedErrors } from './repeatedErrorLog.js';
import { HookfleetError } from './errors.js';
import { createPostgresQueueBackend } from './postgresQueueBackend.js';
import { createRedisQueueBackend } from './redisQueueBackend.js';
import { checkRedis } from './startupChecks.js';

/** How a connection behaves when its store is down; the Redis backend gives each its own. */
export type ConnectionRole =
  /** Fails a command at once while disconnected (producers, api, cli): the caller gets a 503. */
  | 'producer'
  /** Waits out a restart (what a fan-out writes after attempts). */
  | 'fan-out'
  /**
   * Waits out a restart: the BullMQ queues a worker adds jobs to. BullMQ defines its 64 scripts on
   * every connection it uses, which made each ioredis pipeline on that connection cost more (95 µs
   * a pipeline, measured), so they have a connection of their own.
   */
  | 'queues'
  /** Bounded by a short timeout, after which a worker delivers without limits. */
  | 'limits';

/** Worker options without the connection, which the backend provides. */
export type BackendWorkerOptions = Omit<WorkerOptions, 'connection' | 'prefix'> & {
  /** Names the worker's connection (`hookfleet:<connectionName>` in CLIENT LIST). */
  connectionName: string;
  /** Redis key prefix of the queue; default HOOKFLEET_QUEUE_PREFIX. PostgreSQL ignores it. */
  prefix?: string;
};

interface QueueBackendBase {
  /** For the banner, logs and errors: `Redis at redis://…` or `PostgreSQL (trial mode)`. */
  readonly label: string;
  /**
   * A Queue for adding and reading jobs, on a connection that behaves as `role` says. `prefix`:
   * its Redis key prefix (default HOOKFLEET_QUEUE_PREFIX); PostgreSQL, with one schema for every
   * queue, ignores it.
   */
  queue<D = unknown>(name: string, role: ConnectionRole, prefix?: string): Queue<D>;
  /** A Worker with a connection of its own (closed with the backend, after the worker). */
  worker<D = unknown, R = any>( // eslint-disable-line @typescript-eslint/no-explicit-any -- as BullMQ's default
    name: string,
    processor: Processor<D, R>,
    options: BackendWorkerOptions,
  ): Worker<D, R>;
  /** Publishes custom events on a queue's event stream (`prefix` as for queue()). */
  queueEventsProducer(name: string, prefix?: string): QueueEventsProducer;
  /** Whether the queues answer now (producer-role connection); a send checks it first. */
  ready(): boolean;
  /**
   * Undefined once the queues answer, waiting at most `waitMs` for a reconnection (one wait
   * shared by every caller); otherwise why not, in a few words.
   */
  whyUnavailable(waitMs: number): Promise<string | undefined>;
  /** Resolves if the queue store answers (the /healthz probe). */
  ping(): Promise<void>;
  /** Closes the connections the backend opened; close the queues and workers first. */
  close(): Promise<void>;
}

export interface RedisQueueBackend extends QueueBackendBase {
  readonly kind: 'redis';
  /** The connection of `role`, made on first use; for the stores a fleet shares through Redis. */
  redis(role: ConnectionRole): RedisClient;
}

export interface PostgresQueueBackend extends QueueBackendBase {
  readonly kind: 'postgres';
  /** The PostgreSQL schema BullMQ's tables are in (from HOOKFLEET_QUEUE_PREFIX). */
  readonly schema: string;
}

export type QueueBackend = RedisQueueBackend | PostgresQueueBackend;
export type QueueBackendKind = QueueBackend['kind'];

/** What to build a backend on beyond the config. */
export interface QueueBackendOptions {
  /** The database for the PostgreSQL backend (config.databaseUrl may be unset: the embedded one). */
  databaseUrl?: string | undefined;
  /** A producer connection to use in place of one of the backend's own (not closed by close()). */
  producerRedis?: RedisClient | undefined;
  /** Where connection errors are logged (at most one line per 30 s); default: nowhere. */
  logger?: Logger | undefined;
}

/**
 * The backend of `kind`; without one, the config's (`auto` counts as Redis here: only the
 * commands probe for a Redis, see chooseQueueBackend).
 */
export function createQueueBackend(
  config: Config,
  kind: QueueBackendKind = config.queueBackend === 'postgres' ? 'postgres' : 'redis',
  options: QueueBackendOptions = {},
): QueueBackend {
  if (kind === 'redis') {
    const onError = options.logger
      ? logRepeatedErrors(options.logger, 'warn', 'redis connection error')
      : () => {};
    return createRedisQueueBackend(config, options.producerRedis, onError);
  }
  const databaseUrl = options.databaseUrl ?? config.databaseUrl;
  if (databaseUrl === undefined) {
    throw new HookfleetError(
      'config_missing',
      'the PostgreSQL queue backend needs DATABASE_URL (or the embedded PostgreSQL of `hookfleet start`)',
    );
  }
  return createPostgresQueueBackend(config, databaseUrl);
}

/** How long `auto` waits for a Redis at the default address before choosing PostgreSQL. */
export const AUTO_REDIS_PROBE_MS = 1000;

/**
 * The backend a command runs on: the one HOOKFLEET_QUEUE_BACKEND names, Redis when REDIS_URL is
 * set, else (`auto`) Redis if one answers at the default address within AUTO_REDIS_PROBE_MS and
 * PostgreSQL if not.
 */
export async function chooseQueueBackend(config: Config): Promise<QueueBackendKind> {
  if (config.queueBackend !== 'auto') return config.queueBackend;
  try {
    await checkRedis(config.redis, AUTO_REDIS_PROBE_MS);
    return 'redis';
  } catch {
    return 'postgres';
  }
}

/** chooseQueueBackend, then createQueueBackend: what a command that enqueues opens. */
export async function openQueueBackend(
  config: Config,
  options: QueueBackendOptions = {},
): Promise<QueueBackend> {
  return createQueueBackend(config, await chooseQueueBackend(config), options);
}
