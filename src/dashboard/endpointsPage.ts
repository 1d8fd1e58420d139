/**
 * The endpoint health page (issue #8), server-rendered HTML as a Hono sub-app that the API server
 * mounts at /admin/endpoints behind the dashboard's basic auth (api/app.ts):
 *
 *   GET  /                  every endpoint with owner, state, last success, 24 h statistics,
 *                           circuit and stale deadline; ?q= searches URL, description and id,
 *                           ?state= filters (all | active | disabled | failing), ?owner= shows
 *                           one owner's, ?after=<id> pages
 *   GET  /:id               one endpoint: the same facts, failed deliveries, newest attempts
 *   POST /:id/test          sends a test event            } each redirects back to GET /:id
 *   POST /:id/enable        enables (restarts the clock)  } with the outcome in the query
 *   POST /:id/disable       disables ('manual')           } (POST-redirect-GET; see
 *   POST /:id/replay        replays failed deliveries     }  endpointActions.ts)
 *
 * POSTs are refused unless sent from these pages (refuseCrossSite.ts).
 */
import type { ShardedQueue } from '../queueShards.js';
import { Hono, type Context } from 'hono';
import { formBodyLimit } from './formBodyLimit.js';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import {
  countEndpointsByState,
  ENDPOINT_STATE_FILTERS,
  findEndpointHealth,
  listEndpointHealth,
  recentAttempts,
  type EndpointStateFilter,
} from '../db/endpointHealth.js';
import { findEndpoint } from '../db/endpoints.js';
import { listFailedDeliveries } from '../db/failedDeliveries.js';
import { HookfleetError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { endpointIdSchema, isOwnerId } from '../ids.js';
import { isUnavailableError, requireRedis } from '../unavailable.js';
import type { Producer } from '../producer/producer.js';
import { replayFailedDeliveries } from '../producer/replayFailed.js';
import type { CircuitStates } from '../delivery/endpointLimits.js';
import { endpointDetailView } from './endpointDetailView.js';
import {
  flashFromQuery,
  isReplayWindow,
  outcomeQuery,
  REPLAY_WINDOWS,
  type ActionOutcome,
} from './endpointActions.js';
import { endpointsListView } from './endpointsListView.js';
import { errorPage, type CircuitLookup, type PagePaths } from './endpointsPageLayout.js';
import { refuseCrossSite } from './refuseCrossSite.js';

export interface EndpointsPageDeps {
  config: Config;
  logger: Logger;
  dbClient: DbClient;
  /** Sends test events; its `deliveries` queue is where replays go. */
  producer: Pick<Producer, 'sendTestEvent' | 'deliveries' | 'setEndpointActive'>;
  /** Counts manual deactivations, as PATCH /v1/endpoints/:id does. Default: not counted. */
  metrics?: Metrics;
  /** False while the producer's Redis connection is down: test and replay then fail at once. */
  redisReady: () => boolean;
  paths: PagePaths;
  /** The circuit breaker's view of endpoints. Default: none, shown as "—". */
  circuitStates?: CircuitStates;
  /** The clock relative times are computed from. Default: the system clock. */
  now?: () => Date;
}

/** Endpoints per list page. */
export const LIST_PAGE_SIZE = 100;
/** Rows in each table of the detail view. */
export const DETAIL_ROW_LIMIT = 50;
/** Longest search text accepted. */
const MAX_SEARCH_LENGTH = 200;
const DAY_MS = 86_400_000;
/** The forms send one short field; anything bigger is not from them. */
const FORM_LIMIT_BYTES = 4096;
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function createEndpointsPage(deps: EndpointsPageDeps): Hono {
  const { config, logger, paths } = deps;
  const { db } = deps.dbClient;
  const now = deps.now ?? (() => new Date());
  const app = new Hono();
  const statsQuery = (at: Date) => ({
    since: new Date(at.getTime() - DAY_MS),
    defaultStaleAfterDays: config.staleAfterDays,
  });

  async function circuits(endpointIds: readonly string[]): Promise<CircuitLookup> {
    if (deps.circuitStates === undefined) return 'absent';
    try {
      return await deps.circuitStates(endpointIds);
    } catch (error) {
      logger.warn({ err: error }, 'endpoint page: circuit states unavailable');
      return 'unavailable';
    }
  }

  const failPage = (c: Context, status: 400 | 404, code: string, detail: string) =>
    c.html(errorPage(paths, code, detail), status);
  const notFound = (c: Context, id: string) =>
    failPage(c, 404, 'not_found', `No endpoint with id ${JSON.stringify(id.slice(0, 100))}`);
  /** The endpoint id of the path, or undefined when it cannot name an endpoint. */
  const pathId = (c: Context) => {
    const id = c.req.param('id') ?? '';
    return endpointIdSchema.safeParse(id).success ? id : undefined;
  };

  app.use('*', refuseCrossSite({ requireOrigin: true }), async (c, next) => {
    await next();
    // No script runs on these pages and none may: markup that escaped escaping still cannot act.
    // Framing is refused so the buttons cannot be clicked through another site (clickjacking).
    c.res.headers.set('content-security-policy', CONTENT_SECURITY_POLICY);
    c.res.headers.set('x-frame-options', 'DENY');
    c.res.headers.set('referrer-policy', 'same-origin');
  });

  app.get('/', async (c) => {
    const query = c.req.query();
    const search = (query.q ?? '').trim();
    const state = query.state ?? 'all';
    if (search.length > MAX_SEARCH_LENGTH)
      return failPage(c, 400, 'invalid_query', `q is longer than ${MAX_SEARCH_LENGTH} characters`);
    if (!isStateFilter(state)) {
      return failPage(
        c,
        400,
        'invalid_query',
        `state must be one of ${ENDPOINT_STATE_FILTERS.join(', ')} (got ${JSON.stringify(state.slice(0, 40))})`,
      );
    }
    const owner = (query.owner ?? '').trim();
    if (owner !== '' && !isOwnerId(owner)) {
      return failPage(
        c,
        400,
        'invalid_query',
        'owner must be 1 to 128 letters, digits and _ - . : @',
      );
    }
    const ownerId = owner === '' ? undefined : owner;
    const afterId = query.after === '' ? undefined : query.after;
    if (afterId !== undefined && !endpointIdSchema.safeParse(afterId).success)
      return failPage(c, 400, 'invalid_query', 'after must be an endpoint id (ep_…)');
    const at = now();
    const [rows, counts] = await Promise.all([
      listEndpointHealth(db, {
        ...statsQuery(at),
        search,
        state,
        afterId,
        ownerId,
        limit: LIST_PAGE_SIZE + 1,
      }),
      countEndpointsByState(db, ownerId),
    ]);
    const page = rows.slice(0, LIST_PAGE_SIZE);
    return c.html(
      endpointsListView({
        paths,
        now: at,
        rows: page,
        circuits: await circuits(page.map((row) => row.endpoint.id)),
        counts,
        search,
        state,
        owner,
        afterId,
        nextAfterId: rows.length > LIST_PAGE_SIZE ? page[page.length - 1]!.endpoint.id : undefined,
        pageSize: LIST_PAGE_SIZE,
        defaultStaleAfterDays: config.staleAfterDays,
        staleWarningDays: config.staleWarningDays,
        failingDisableAfterHours: config.failingDisableAfterHours,
        flash: flashFromQuery(query),
      }),
    );
  });

  app.get('/:id', async (c) => {
    const id = pathId(c);
    const at = now();
    const health = id === undefined ? undefined : await findEndpointHealth(db, id, statsQuery(at));
    if (id === undefined || health === undefined) return notFound(c, c.req.param('id'));
    const [attempts, failed, circuitLookup] = await Promise.all([
      recentAttempts(db, id, DETAIL_ROW_LIMIT),
      listFailedDeliveries(db, { endpointId: id, limit: DETAIL_ROW_LIMIT }),
      circuits([id]),
    ]);
    return c.html(
      endpointDetailView({
        paths,
        now: at,
        health,
        circuits: circuitLookup,
        attempts,
        failed,
        rowLimit: DETAIL_ROW_LIMIT,
        staleWarningDays: config.staleWarningDays,
        failingDisableAfterHours: config.failingDisableAfterHours,
        defaultRetryScheduleMs: config.retryScheduleMs,
        flash: flashFromQuery(c.req.query()),
      }),
    );
  });

  /**
   * A button's route: finds the endpoint (404 page if none), runs `act`, and redirects to the
   * detail view with its outcome. Errors a user can do something about (disabled endpoint, Redis
   * down) become the outcome too; anything else is the app's 500.
   */
  function action(
    name: string,
    act: (c: Context, endpoint: { id: string; active: boolean }) => Promise<ActionOutcome>,
  ) {
    app.post(`/:id/${name}`, formBodyLimit(FORM_LIMIT_BYTES), async (c) => {
      const id = pathId(c);
      const endpoint = id === undefined ? undefined : await findEndpoint(db, id);
      if (endpoint === undefined) return notFound(c, c.req.param('id'));
      let outcome: ActionOutcome;
      try {
        outcome = await act(c, endpoint);
      } catch (error) {
        if (error instanceof FormError) return failPage(c, 400, 'invalid_form', error.message);
        const code = actionErrorCode(error);
        if (code === undefined) throw error;
        logger.warn(
          { err: error, endpointId: endpoint.id, action: name },
          'dashboard action failed',
        );
        outcome = { done: 'failed', code };
      }
      return c.redirect(`${paths.endpoints}/${endpoint.id}?${outcomeQuery(outcome)}`, 303);
    });
  }

  action('test', async (_c, endpoint) => {
    requireRedis(deps.redisReady);
    const sent = await deps.producer.sendTestEvent(endpoint.id);
    return { done: 'test-sent', messageId: sent.id };
  });

  action('enable', async (_c, endpoint) => {
    if (endpoint.active) return { done: 'already-active' };
    await deps.producer.setEndpointActive(endpoint.id, true);
    return { done: 'enabled' };
  });

  action('disable', async (_c, endpoint) => {
    if (!endpoint.active) return { done: 'already-disabled' };
    await deps.producer.setEndpointActive(endpoint.id, false);
    deps.metrics?.endpointsDeactivated.inc({ reason: 'manual' });
    return { done: 'disabled' };
  });

  action('replay', async (c, endpoint) => {
    const form = await c.req.parseBody();
    const since = form.since;
    if (!isReplayWindow(since)) {
      throw new FormError(
        `since must be one of ${Object.keys(REPLAY_WINDOWS).join(', ')} (got ${typeof since === 'string' ? JSON.stringify(since.slice(0, 40)) : 'none'})`,
      );
    }
    // Deliveries to a disabled endpoint fail at once (deliveryProcessor.ts); replaying them would
    // only fail them again.
    if (!endpoint.active) return { done: 'failed', code: 'endpoint_inactive' };
    requireRedis(deps.redisReady);
    const result = await replayFailedDeliveries(
      { db, queue: deps.producer.deliveries as ShardedQueue<DeliveryJobData> },
      { endpointId: endpoint.id, since: new Date(now().getTime() - REPLAY_WINDOWS[since].ms) },
    );
    return { done: 'replayed', since, ...pickCounts(result) };
  });

  return app;
}

/** A form field the page's own forms would never send; answered 400 with the field named. */
class FormError extends Error {
  override name = 'FormError';
}

function isStateFilter(value: string): value is EndpointStateFilter {
  return (ENDPOINT_STATE_FILTERS as readonly string[]).includes(value);
}

/** The outcome code of an error an operator can act on; undefined for the rest (bugs). */
function actionErrorCode(error: unknown): string | undefined {
  if (error instanceof HookfleetError) return error.code;
  if (isUnavailableError(error)) return 'unavailable';
  return undefined;
}

function pickCounts(result: { total: number; retried: number; enqueued: number; pending: number }) {
  const { total, retried, enqueued, pending } = result;
  return { total, retried, enqueued, pending };
}
