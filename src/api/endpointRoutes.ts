/**
 * `/v1/endpoints`: register, list, read (with health), change, delete, test, rotate the secret,
 * recover (replay failed deliveries). With a portal session token every route sees only the
 * session owner's endpoints: another owner's answers the 404 of a missing one, and a new
 * endpoint belongs to the session's owner.
 */
import type { ShardedQueue } from '../queueShards.js';
import type { Context } from 'hono';
import { Hono } from 'hono';
import type { Config } from '../config.js';
import type { DbClient } from '../db/client.js';
import {
  deleteEndpoint,
  findEndpoint,
  insertEndpointWithSecret,
  listEndpoints,
  rotateEndpointSecret,
} from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import { endpointIdSchema, newId, newSecret } from '../ids.js';
import type { DeliveryJobData } from '../jobs.js';
import type { Metrics } from '../metrics.js';
import type { AddressGuard } from '../delivery/addressGuard.js';
import type { CircuitStates } from '../delivery/endpointLimits.js';
import {
  createEndpointRequest,
  listEndpointsQuery,
  recoverEndpointRequest,
  testEndpointRequest,
  rotateSecretRequest,
  updateEndpointRequest,
} from './contracts.js';
import { checkEndpointUrl, verifyEndpoint } from '../delivery/endpointUrl.js';
import { requireRedis } from '../unavailable.js';
import { readJson } from './jsonBody.js';
import type { Producer } from '../producer/producer.js';
import { changeEndpoint, checkRetrySchedule } from '../producer/changeEndpoint.js';
import { replayFailedDeliveries } from '../producer/replayFailed.js';
import { parseInput } from '../producer/sendInput.js';
import { endpointHealthView, toEndpointView, type EndpointHealthView } from '../views.js';
import { canSee, ownerScope } from './scope.js';

/** Endpoint requests are small; this bounds what is read of one. */
const ENDPOINT_BODY_LIMIT_BYTES = 64 * 1024;
const DEFAULT_PAGE_SIZE = 50;

export interface EndpointRoutesDeps {
  config: Config;
  dbClient: DbClient;
  producer: Producer;
  metrics: Metrics;
  guard: AddressGuard;
  redisReady: () => boolean;
  /** The circuit breaker's state of endpoints; undefined when the breaker is off. */
  circuitStates?: CircuitStates | undefined;
}

export function endpointRoutes(deps: EndpointRoutesDeps): Hono {
  const { config, producer, guard } = deps;
  const { db } = deps.dbClient;
  const app = new Hono();
  const limit = { limitBytes: ENDPOINT_BODY_LIMIT_BYTES };

  async function requireEndpoint(c: Context, id: string): Promise<EndpointRow> {
    const row = endpointIdSchema.safeParse(id).success ? await findEndpoint(db, id) : undefined;
    if (!row || !canSee(c, row.ownerId)) throw notFound(id);
    return row;
  }

  app.post('/', async (c) => {
    const input = await readJson(c, createEndpointRequest, limit);
    const ownerId = ownerScope(c) ?? input.ownerId;
    if (input.ownerId !== undefined && input.ownerId !== ownerId) {
      throw otherOwner('ownerId', `this portal session may add endpoints only for ${ownerId}`);
    }
    await checkEndpointUrl(guard, input.url);
    if (input.retrySchedule) checkRetrySchedule(input.retrySchedule, config.messageRetentionDays);
    const id = newId('ep');
    const secret = newSecret();
    if (input.verify === true) {
      await verifyEndpoint({
        guard,
        timeoutMs: config.deliveryTimeoutMs,
        endpointId: id,
        url: input.url,
        secret,
        payloadFormat: input.payloadFormat ?? 'envelope',
        headers: input.headers,
      });
    }
    const row = await insertEndpointWithSecret(db, {
      id,
      secret,
      url: input.url,
      ownerId,
      eventTypes: input.eventTypes,
      description: input.description,
      staleAfterDays: input.staleAfterDays,
      rateLimitPerSecond: input.rateLimitPerSecond,
      failingDisableAfterHours: input.failingDisableAfterHours,
      payloadFormat: input.payloadFormat,
      headers: input.headers,
      retryScheduleMs: input.retrySchedule,
    });
    return c.json({ ...toEndpointView(row), secret: row.secret }, 201, {
      location: `/v1/endpoints/${row.id}`,
    });
  });

  app.get('/', async (c) => {
    const query = parseInput(listEndpointsQuery, c.req.query());
    const ownerId = ownerScope(c) ?? query.ownerId;
    if (query.ownerId !== undefined && query.ownerId !== ownerId) {
      throw otherOwner('ownerId', `this portal session sees only the endpoints of ${ownerId}`);
    }
    const pageSize = query.limit ?? DEFAULT_PAGE_SIZE;
    const rows = await listEndpoints(db, pageSize + 1, query.cursor, ownerId);
    const page = rows.slice(0, pageSize);
    const nextCursor = rows.length > pageSize ? page[page.length - 1]!.id : null;
    return c.json({ data: page.map(toEndpointView), nextCursor });
  });

  app.get('/:id', async (c) => {
    const row = await requireEndpoint(c, c.req.param('id'));
    return c.json({ ...(await endpointHealthView(db, row)), circuit: await circuitOf(row.id) });
  });

  /** Null rather than an error when Redis cannot say: the rest of the answer is still good. */
  async function circuitOf(id: string): Promise<EndpointHealthView['circuit']> {
    if (!deps.circuitStates) return null;
    try {
      const circuit = (await deps.circuitStates([id])).get(id);
      return circuit
        ? { state: circuit.state, retryAt: circuit.retryAt?.toISOString() ?? null }
        : null;
    } catch {
      return null;
    }
  }

  app.patch('/:id', async (c) => {
    const existing = await requireEndpoint(c, c.req.param('id'));
    const { retrySchedule, ...input } = await readJson(c, updateEndpointRequest, limit);
    const { row, disabled } = await changeEndpoint(
      { db, guard, producer, messageRetentionDays: config.messageRetentionDays },
      existing,
      { ...input, retryScheduleMs: retrySchedule },
    );
    if (disabled) deps.metrics.endpointsDeactivated.inc({ reason: 'manual' });
    if (!row) throw notFound(existing.id); // deleted meanwhile
    return c.json(toEndpointView(row));
  });

  app.delete('/:id', async (c) => {
    const { id } = await requireEndpoint(c, c.req.param('id'));
    if (!(await deleteEndpoint(db, id))) throw notFound(id);
    return c.body(null, 204);
  });

  app.post('/:id/test', async (c) => {
    const endpoint = await requireEndpoint(c, c.req.param('id'));
    const input = await readJson(c, testEndpointRequest, { ...limit, optional: true });
    requireRedis(deps.redisReady);
    const result = await producer.sendTestEvent(endpoint.id, input.eventType, input.payload);
    return c.json(result, 202);
  });

  app.post('/:id/rotate-secret', async (c) => {
    const existing = await requireEndpoint(c, c.req.param('id'));
    await readJson(c, rotateSecretRequest, { ...limit, optional: true });
    const row = await rotateEndpointSecret(db, existing.id, config.secretRotationOverlapMs);
    if (!row) throw notFound(existing.id);
    return c.json({
      id: row.id,
      secret: row.secret,
      previousSecretExpiresAt: row.previousSecretExpiresAt!.toISOString(),
    });
  });

  // Svix's "recover": replays every delivery to the endpoint that failed since `since` (issue #8).
  // Synchronous: the answer says what was done, so it takes as long as the replay does.
  app.post('/:id/recover', async (c) => {
    const endpoint = await requireEndpoint(c, c.req.param('id'));
    const input = await readJson(c, recoverEndpointRequest, limit);
    if (!endpoint.active) {
      throw new HookfleetError(
        'endpoint_inactive',
        `endpoint ${endpoint.id} is disabled; enable it first (its deliveries would fail again at once)`,
        409,
      );
    }
    requireRedis(deps.redisReady);
    const result = await replayFailedDeliveries(
      { db, queue: producer.deliveries as ShardedQueue<DeliveryJobData> },
      { endpointId: endpoint.id, since: new Date(input.since) },
    );
    return c.json(result, 202);
  });

  return app;
}

/** A portal session naming another owner than its own: refused, with the field named. */
function otherOwner(path: string, message: string): HookfleetError {
  return new HookfleetError('forbidden', `${path}: ${message}`, 403, [{ path, message }]);
}

function notFound(id: string): HookfleetError {
  return new HookfleetError(
    'not_found',
    `no endpoint with id ${JSON.stringify(id.slice(0, 100))}`,
    404,
  );
}
