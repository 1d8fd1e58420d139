/**
 * The HTTP API for producers in any language, built as a Hono app by a factory that never listens
 * by itself (server.ts does; tests call `app.request()` in-process).
 *
 *   /v1/endpoints, /v1/messages   JSON API, `Authorization: Bearer <key>` (HOOKFLEET_API_KEYS),
 *                                 or a portal session token: one owner's share only (scope.ts)
 *   /v1/owners                    portal sessions for an owner (ownerRoutes.ts), API keys only
 *   /admin/queues                 Bull Board, basic auth (HOOKFLEET_ADMIN_USER/PASSWORD)
 *   /admin/endpoints              endpoint health page (dashboard/endpointsPage.ts), same auth
 *   /portal                       the customer portal (dashboard/portalPage.ts), a portal session
 *                                 cookie made from the session's token
 *   /healthz, /metrics            open, for load balancers and Prometheus
 *   /openapi.json                 open, generated from the zod contracts
 *
 * Every answer that is not a success is `{code, detail}`; nothing a client sends can produce a
 * stack trace (see httpErrors.ts and jsonBody.ts).
 */
import type { Queue } from 'bullmq';
import { Hono } from 'hono';
import type { RedisClient } from '../redis.js';
import type { Config } from '../config.js';
import type { QueueBackend } from '../queueBackend.js';
import { createBullBoardApp } from '../dashboard/bullBoard.js';
import { createEndpointsPage } from '../dashboard/endpointsPage.js';
import { createPortalPage } from '../dashboard/portalPage.js';
import { refuseCrossSite } from '../dashboard/refuseCrossSite.js';
import type { DbClient } from '../db/client.js';
import { DELIVERIES_QUEUE, MAINTENANCE_QUEUE, type DeliveryJobData } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { createAddressGuard, type Resolver } from '../delivery/addressGuard.js';
import { readCircuitStates, type CircuitStates } from '../delivery/endpointLimits.js';
import { readDeliveriesSending } from '../delivery/deliveriesSending.js';
import { requireAdmin } from './auth.js';
import { endpointRoutes } from './endpointRoutes.js';
import { errorResponse } from './httpErrors.js';
import { messageRoutes } from './messageRoutes.js';
import { openApiDocument } from './openapi.js';
import { opsRoutes, type QueueStore } from './opsRoutes.js';
import { ownerRoutes } from './ownerRoutes.js';
import { requireApiKeyOrPortalToken } from './portalAuth.js';
import type { Producer } from '../producer/producer.js';
import {
  boardName,
  boardPrefix,
  shardOf,
  singleQueuePrefix,
  type ShardedQueue,
} from '../queueShards.js';

/** Where Bull Board is mounted. */
export const DASHBOARD_PATH = '/admin/queues';
/** Where the endpoint health page is mounted. */
export const ENDPOINTS_PAGE_PATH = '/admin/endpoints';
/** Where the customer portal page is mounted (the `url` of a portal session). */
export const PORTAL_PATH = '/portal';

export interface ApiDeps {
  config: Config;
  logger: Logger;
  dbClient: DbClient;
  /** Enqueues messages; its `messagesQueue` and `deliveriesQueue` are also shown by Bull Board and counted by /metrics. */
  producer: Producer;
  metrics: Metrics;
  /**
   * A Redis connection to watch instead of the producer's queue backend: /healthz pings it, and
   * while it is not connected the routes that enqueue answer 503 with Retry-After at once.
   * Default: the producer's queue backend (`producer.queueBackend`).
   */
  redis?: RedisClient | undefined;
  /** DNS resolver for the address guard; tests inject one (default: the system resolver). */
  resolve?: Resolver;
  /** The `maintenance` queue for Bull Board and /metrics. Default: one on the producer's queue backend. */
  maintenanceQueue?: Queue;
  /**
   * The circuit breaker's view of endpoints, for GET /v1/endpoints/:id and the endpoint health
   * page. Default: read from Redis (none when HOOKFLEET_CIRCUIT_FAILURES is 0, or when the queues
   * are on PostgreSQL: the limits then live in the worker's memory, see startWorker's).
   */
  circuitStates?: CircuitStates;
}

export function createApp(deps: ApiDeps): Hono {
  const { config, logger, producer } = deps;
  const guard = createAddressGuard({
    allowCidrs: config.allowCidrs,
    ...(deps.resolve && { resolve: deps.resolve }),
  });
  const deliveriesQueue = producer.deliveries as ShardedQueue<DeliveryJobData>;
  const messagesQueue = producer.messages;
  const backend = producer.queueBackend;
  const maintenanceQueue = deps.maintenanceQueue ?? maintenanceQueueOn(backend, config, logger);
  const { redis } = deps;
  const redisReady = redis ? () => redis.status === 'ready' : () => backend.ready();

  const app = new Hono();
  app.onError((error, c) => errorResponse(c, error, logger));
  app.notFound((c) =>
    c.json(
      { code: 'not_found', detail: `no route for ${c.req.method} ${c.req.path.slice(0, 200)}` },
      404,
    ),
  );

  app.route(
    '/',
    opsRoutes({
      ...deps,
      queues: [...messagesQueue.shards, ...deliveriesQueue.shards, maintenanceQueue],
      queueStore: redis ? redisQueueStore(redis) : backend,
    }),
  );
  app.get('/openapi.json', (c) => c.json(openApiDocument()));

  // An API key acts for the platform; a portal session token only for its owner (scope.ts).
  app.use('/v1/*', requireApiKeyOrPortalToken(config.apiKeys, deps.dbClient.db));
  const circuitStates = deps.circuitStates ?? defaultCircuitStates(deps);
  // The endpoint limits' sets, in Redis unless the queues are in PostgreSQL (trial mode), where
  // the limits live in the delivering process's memory and statuses come from attempts alone.
  const limitsRedis = redis ?? (backend.kind === 'redis' ? backend.redis('producer') : undefined);
  app.route('/v1/endpoints', endpointRoutes({ ...deps, guard, redisReady, circuitStates }));
  app.route(
    '/v1/messages',
    messageRoutes({
      ...deps,
      deliveriesQueue,
      messagesQueue,
      redisReady,
      ...(limitsRedis && {
        deliveriesInFlight: (messageId: string, endpointIds: readonly string[]) =>
          readDeliveriesSending(limitsRedis, config.queuePrefix, messageId, endpointIds),
      }),
    }),
  );
  app.route('/v1/owners', ownerRoutes({ ...deps, portalPath: PORTAL_PATH }));

  app.get(`${PORTAL_PATH}/`, (c) => c.redirect(PORTAL_PATH, 301));
  app.route(PORTAL_PATH, createPortalPage({ ...deps, guard, redisReady, base: PORTAL_PATH }));

  // Lets through changes without browser headers (curl on Bull Board's API); the endpoint pages
  // refuse those too (refuseCrossSite's requireOrigin).
  app.use('/admin/*', requireAdmin(config.adminUser, config.adminPassword), refuseCrossSite());
  // The board links to its home with a trailing slash; Hono routes are strict about it.
  app.get(`${DASHBOARD_PATH}/`, (c) => c.redirect(DASHBOARD_PATH, 301));
  app.route(
    DASHBOARD_PATH,
    createBullBoardApp({
      queues: [
        ...boardQueues(config, messagesQueue),
        ...boardQueues(config, deliveriesQueue),
        { queue: maintenanceQueue },
      ],
      basePath: DASHBOARD_PATH,
    }),
  );
  app.get(`${ENDPOINTS_PAGE_PATH}/`, (c) => c.redirect(ENDPOINTS_PAGE_PATH, 301));
  app.route(
    ENDPOINTS_PAGE_PATH,
    createEndpointsPage({
      ...deps,
      circuitStates,
      redisReady,
      paths: {
        endpoints: ENDPOINTS_PAGE_PATH,
        queues: DASHBOARD_PATH,
        deliveriesQueueOf: (messageId) =>
          boardName(config, DELIVERIES_QUEUE, shardOf(messageId, deliveriesQueue.shards.length)),
      },
    }),
  );
  return app;
}

/** The breaker's state as the workers keep it in Redis; none (shown as "—") when it is off. */
function defaultCircuitStates(deps: ApiDeps): CircuitStates | undefined {
  if (deps.config.circuitFailures === 0) return undefined;
  const backend = deps.producer.queueBackend;
  const redis = deps.redis ?? (backend.kind === 'redis' ? backend.redis('producer') : undefined);
  if (!redis) return undefined;
  return (endpointIds) => readCircuitStates(redis, deps.config.queuePrefix, endpointIds);
}

/**
 * On Redis, a Queue on a connection someone else owns opens nothing of its own, so it needs no
 * closing; on PostgreSQL it is closed with the process. Its errors (Redis down) are logged rather
 * than thrown from an EventEmitter.
 */
function maintenanceQueueOn(backend: QueueBackend, config: Config, logger: Logger): Queue {
  const queue = backend.queue(
    MAINTENANCE_QUEUE,
    'producer',
    singleQueuePrefix(config, MAINTENANCE_QUEUE),
  );
  queue.on('error', (error) => logger.debug({ err: error }, 'maintenance queue error'));
  return queue;
}

/** A Redis connection given in the deps, as the health check sees a queue store. */
function redisQueueStore(redis: RedisClient): QueueStore {
  return {
    kind: 'redis',
    ready: () => redis.status === 'ready',
    ping: () => redis.ping().then(() => {}),
  };
}

/** Every shard of a queue for Bull Board, each under its own name (queueShards.ts's boardName). */
function boardQueues<T>(
  config: Config,
  queue: ShardedQueue<T>,
): { queue: Queue; boardPrefix: string }[] {
  return queue.shards.map((shard, n) => ({
    queue: shard as Queue,
    boardPrefix: boardPrefix(config, queue.name, n),
  }));
}
