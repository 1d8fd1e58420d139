/**
 * Trial mode's queue backend: BullMQ's own PostgreSQL backend (bullmq/postgres: jobs are rows of
 * one table claimed with `FOR UPDATE SKIP LOCKED`, workers woken by LISTEN/NOTIFY) on the
 * database hookfleet already uses, in a schema of its own named after HOOKFLEET_QUEUE_PREFIX.
 * BullMQ creates and migrates that schema itself on first use (`migrate: true`, serialised by an
 * advisory lock), so trial mode needs no step of ours.
 *
 * Every Queue and Worker owns a small pool (BullMQ's PostgresConnection), closed with it; a
 * worker adds one connection for LISTEN. What this backend supports for hookfleet's use was
 * checked against bullmq 6.7: delayed jobs, custom backoff, job schedulers (the sweep), removal,
 * promotion, job counts, custom events, Bull Board. It does not implement `trimEvents` or
 * `removeDeprecatedPriorityKey`, which hookfleet never calls.
 */
import {
  createPostgresBackend,
  withBackend,
  type Queue,
  type QueueEventsProducer,
  type Worker,
} from 'bullmq';
import type { Config } from './config.js';
import type { PostgresQueueBackend } from './queueBackend.js';

/** Pool size of each Queue: adds and reads are short; the api and producer share one queue each. */
const QUEUE_POOL_MAX = 2;
/** Pool size of each Worker: a finishing job and the next claim, a lock renewal, a stalled check. */
const WORKER_POOL_MAX = 4;

/**
 * The schema for a queue prefix: its letters, digits and underscores (anything else becomes
 * `_`), lower-cased, after `hookfleet_queues` when it is the default prefix. PostgreSQL
 * identifiers are at most 63 bytes.
 */
export function queueSchemaName(prefix: string): string {
  const base = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `${/^[a-z_]/.test(base) ? '' : 'q_'}${base}_queues`.slice(0, 63);
}

export function createPostgresQueueBackend(
  config: Config,
  databaseUrl: string,
): PostgresQueueBackend {
  const schema = queueSchemaName(config.queuePrefix);
  const classes = withBackend(createPostgresBackend);
  const connection = (max: number, applicationName: string) => ({
    connectionString: databaseUrl,
    schema,
    migrate: true,
    max,
    application_name: applicationName,
  });
  // The PostgreSQL-backed classes have the same methods as the Redis-backed ones the rest of the
  // code is typed against; only their backend type parameter differs.
  return {
    kind: 'postgres',
    label: 'PostgreSQL (trial mode)',
    schema,
    queue: <D>(name: string) =>
      new classes.Queue<D>(name, {
        connection: connection(QUEUE_POOL_MAX, `hookfleet:${name}`),
      }) as unknown as Queue<D>,
    worker(name, processor, options) {
      const { connectionName, prefix: _prefix, ...rest } = options;
      return new classes.Worker(name, processor, {
        ...rest,
        connection: connection(WORKER_POOL_MAX, `hookfleet:${connectionName}`),
      }) as unknown as Worker;
    },
    queueEventsProducer: (name) =>
      new classes.QueueEventsProducer(name, {
        connection: connection(QUEUE_POOL_MAX, `hookfleet:${name}:events`),
      }) as unknown as QueueEventsProducer,
    // PostgreSQL holds the messages too: while it is down a send fails on its insert anyway.
    ready: () => true,
    whyUnavailable: () => Promise.resolve(undefined),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
