/**
 * Every Redis connection hookfleet opens is made here, from a `RedisTarget` (config.ts reads it
 * from REDIS_URL, or REDIS_CLUSTER_NODES for a Redis Cluster). Each role gets the options it
 * needs, the same on one node and on a cluster:
 *
 *   createWorkerRedis     BullMQ workers, the queues a worker adds to, what a fan-out writes
 *                         after each attempt: commands wait out an outage
 *   createLimitsRedis     the per-endpoint limits: bounded, fails fast
 *   createProducerRedis   producers, the api, the CLI: fails fast, never queues offline
 *   createProbeRedis      start-up checks and shutdown probes: one try, no reconnection
 *
 * On a cluster the role's node options go to ioredis's `redisOptions` (used for every node's
 * connection), and the cluster-level ones (offline queue) to the cluster client. Reads go to
 * masters (ioredis's default `scaleReads: 'master'`): BullMQ reads what it has just written. A
 * caller treats both kinds alike through `RedisClient`.
 *
 * None is auto-pipelined: what a worker sends per delivery is already gathered into one call per
 * turn of the event loop (turnBatch.ts), and an ioredis auto-pipeline costs more CPU than the
 * writes it saves (one command a turn: 97 against 57 µs; with BullMQ's 64 scripts defined on the
 * connection, 159). Side by side, the broadcast benchmark's workers spent 7–17% less CPU per
 * delivery with it off on the limits' and fan-out's connections. (On a cluster it could also crash
 * on a reply arriving while the slot map changed, redis/ioredis#2109.)
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { displayUrl } from './logger.js';

/** Where Redis is: one node (a redis:// URL) or a cluster (seed nodes; the rest is discovered). */
export type RedisTarget =
  | { readonly kind: 'node'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
    };

/** The target of one Redis node at `url`. */
export function redisNode(url: string): RedisTarget {
  return { kind: 'node', url };
}

/** A connection made by this module: a single-node or a cluster client (both ioredis). */
export type RedisClient = Redis | Cluster;

/** Whether `target` is a Redis Cluster, where a queue's keys must share a hash tag. */
export function isCluster(target: RedisTarget): boolean {
  return target.kind === 'cluster';
}

/** How a target is named in log lines and error messages: without its password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'cluster') {
    return `Redis Cluster at ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }
  return `Redis at ${displayUrl(target.url)}`;
}

/** The variable a user fixes when `target` does not answer. */
export function redisTargetVariable(target: RedisTarget): string {
  return target.kind === 'cluster' ? 'REDIS_CLUSTER_NODES' : 'REDIS_URL';
}

interface RoleOptions {
  /** Options of each node's connection. */
  node: RedisOptions;
  /** ioredis's offline queue: commands sent while disconnected wait for the connection. */
  enableOfflineQueue?: boolean;
  /** Cluster only: how it retries reaching the seed nodes (null: never). */
  clusterRetryStrategy?: ClusterOptions['clusterRetryStrategy'];
  lazyConnect?: boolean;
}

/** One connection to `target` with a role's options. */
function connect(target: RedisTarget, role: RoleOptions): RedisClient {
  const { node, clusterRetryStrategy, ...shared } = role;
  const pick = <T extends object>(options: T) =>
    Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T;
  if (target.kind === 'node') return new Redis(target.url, pick({ ...node, ...shared }));
  return new Cluster(
    target.nodes.map((n) => ({ host: n.host, port: n.port })),
    pick({
      ...shared,
      clusterRetryStrategy,
      redisOptions: node,
      // A failover takes the cluster's node timeout plus an election (a few seconds): commands
      // meanwhile are retried on the new slot map rather than failed after a few 100 ms tries.
      retryDelayOnClusterDown: 300,
      retryDelayOnFailover: 300,
      maxRedirections: 64,
    }),
  );
}

/**
 * How long a producer waits for a Redis connection that is (re)connecting before it tells its
 * caller Redis is unavailable, and (as `commandTimeout`) for the answer to a command sent on a
 * connection that stopped answering without closing (a network partition).
 */
export const PRODUCER_REDIS_WAIT_MS = 1000;
export const PRODUCER_REDIS_COMMAND_TIMEOUT_MS = 3000;

/**
 * Connection for BullMQ workers: BullMQ requires `maxRetriesPerRequest: null` on connections
 * that block, so a worker waits out a Redis restart instead of crashing. The same options serve
 * the BullMQ queues a worker adds jobs to and what a fan-out writes after each attempt (its
 * progress bitmap, its owner's place in the queue), each on a connection of its own
 * (queueBackend.ts ConnectionRole): commands wait out a Redis restart rather than fail and make
 * the fan-out repeat the attempt.
 */
export function createWorkerRedis(target: RedisTarget, name: string): RedisClient {
  return connect(target, { node: { maxRetriesPerRequest: null, connectionName: name } });
}

/** How long a worker waits for the per-endpoint limits before delivering without them. */
export const LIMITS_REDIS_COMMAND_TIMEOUT_MS = 1000;

/**
 * Connection for the per-endpoint limits (delivery/endpointLimits.ts), whose admissions and
 * releases of one turn go out as one script call each (turnBatch.ts); each call is bounded by
 * `commandTimeout`, after which the worker delivers without limits rather than wait for Redis.
 */
export function createLimitsRedis(target: RedisTarget, name: string): RedisClient {
  return connect(target, {
    node: {
      maxRetriesPerRequest: 1,
      commandTimeout: LIMITS_REDIS_COMMAND_TIMEOUT_MS,
      connectionName: name,
    },
  });
}

/**
 * Connection for producers: a caller facing a Redis outage gets an error it can act on rather
 * than a hung request. `enableOfflineQueue: false` makes a command fail at once while the
 * connection is down instead of waiting in memory to be sent on reconnection (which would both
 * hold the caller and, after it gave up, enqueue what it was told had failed); `commandTimeout`
 * bounds a command sent on a connection that stopped answering. ioredis reconnects by itself.
 */
export function createProducerRedis(target: RedisTarget, name: string): RedisClient {
  return connect(target, {
    node: {
      maxRetriesPerRequest: 1,
      commandTimeout: PRODUCER_REDIS_COMMAND_TIMEOUT_MS,
      connectionName: name,
    },
    enableOfflineQueue: false,
  });
}

/**
 * Connection for one check (startupChecks.ts): connects when asked, once, bounded by
 * `timeoutMs`, and never reconnects.
 */
export function createProbeRedis(target: RedisTarget, timeoutMs: number): RedisClient {
  return connect(target, {
    node: {
      connectTimeout: timeoutMs,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectionName: 'hookfleet:startup-check',
    },
    enableOfflineQueue: false,
    lazyConnect: true,
    clusterRetryStrategy: () => null,
  });
}

/**
 * Resolves true once `redis` is ready for commands, false if it is not within `timeoutMs`
 * (Redis down or restarting) or was closed on purpose. Adds two listeners while it waits, so
 * callers that may wait in numbers should share one wait.
 */
export function waitUntilRedisReady(redis: RedisClient, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  if (redis.status === 'end') return Promise.resolve(false);
  if (redis.status === 'wait') redis.connect().catch(() => {}); // lazyConnect: errors surface as 'end' or the timeout
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      redis.off('end', done);
      resolve(redis.status === 'ready');
    };
    const timer = setTimeout(done, timeoutMs);
    redis.on('ready', done);
    redis.on('end', done);
  });
}

/**
 * Closes a connection for a Lifecycle: QUIT, so replies already on their way arrive first, or at
 * once when QUIT cannot be sent (connection down).
 */
export async function quitRedis(redis: RedisClient): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}
