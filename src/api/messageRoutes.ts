/**
 * `/v1/messages`: send (fan out), read with deliveries and attempts, redeliver. A portal session
 * token reads and redelivers only its owner's messages (another owner's is the 404 of a missing
 * one) and cannot send: what happens to a customer is the platform's to say.
 */
import type { ShardedQueue } from '../queueShards.js';
import type { Context } from 'hono';
import { Hono } from 'hono';
import type { Config } from '../config.js';
import { findAttemptsForMessage } from '../db/attempts.js';
import type { DbClient } from '../db/client.js';
import { findMessage } from '../db/messages.js';
import type { MessageRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import { messageIdSchema } from '../ids.js';
import { listMessagesQuery, redeliverRequest, sendMessageRequest } from './contracts.js';
import { requireRedis } from '../unavailable.js';
import { readJson } from './jsonBody.js';
import type { Producer } from '../producer/producer.js';
import { redeliverMessage } from '../producer/redeliver.js';
import { toMessageView } from '../views.js';
import { canSee, ownerScope, requirePlatform } from './scope.js';
import { listMessagesPage } from '../db/ownerActivity.js';
import { parseInput } from '../producer/sendInput.js';

/**
 * Room for the request's envelope (event type, idempotency key, up to 1000 endpoint ids) on top
 * of the payload limit: the body may be this much larger than HOOKFLEET_MAX_PAYLOAD_BYTES, and
 * the payload itself is then held to the limit exactly by the Producer (also a 413).
 */
export const ENVELOPE_ALLOWANCE_BYTES = 64 * 1024;
const SMALL_BODY_LIMIT_BYTES = 64 * 1024;
const DEFAULT_PAGE_SIZE = 50;

export interface MessageRoutesDeps {
  config: Config;
  dbClient: DbClient;
  producer: Producer;
  deliveriesQueue: ShardedQueue<DeliveryJobData>;
  /** Fan-outs: a delivery whose fan-out has not run yet is not redelivered (it is on its way). */
  messagesQueue: ShardedQueue;
  redisReady: () => boolean;
  /**
   * Which of a message's endpoints an attempt is being sent to now (delivery/deliveriesSending.ts,
   * in Redis). Default: none known, every delivery's status from its attempts.
   */
  deliveriesInFlight?: (
    messageId: string,
    endpointIds: readonly string[],
  ) => Promise<ReadonlySet<string>>;
}

export function messageRoutes(deps: MessageRoutesDeps): Hono {
  const { db } = deps.dbClient;
  const app = new Hono();

  async function requireMessage(c: Context, id: string): Promise<MessageRow> {
    const row = messageIdSchema.safeParse(id).success ? await findMessage(db, id) : undefined;
    if (!row || !canSee(c, row.ownerId))
      throw new HookfleetError(
        'not_found',
        `no message with id ${JSON.stringify(id.slice(0, 100))}`,
        404,
      );
    return row;
  }

  /**
   * Best effort: with Redis unreachable the history still answers, and a delivery being sent
   * shows as its attempts say (queued, or retrying).
   */
  async function inFlight(message: MessageRow): Promise<ReadonlySet<string>> {
    if (!deps.deliveriesInFlight || !deps.redisReady()) return new Set();
    return deps.deliveriesInFlight(message.id, message.endpointIds).catch(() => new Set());
  }

  app.post('/', async (c) => {
    requirePlatform(c, 'send messages');
    const input = await readJson(c, sendMessageRequest, {
      limitBytes: deps.config.maxPayloadBytes + ENVELOPE_ALLOWANCE_BYTES,
    });
    requireRedis(deps.redisReady);
    const result = await deps.producer.send(input);
    return c.json(result, 202);
  });

  app.get('/', async (c) => {
    const query = parseInput(listMessagesQuery, c.req.query());
    const ownerId = ownerScope(c) ?? query.ownerId;
    if (query.ownerId !== undefined && query.ownerId !== ownerId) {
      const message = `this portal session sees only the messages of ${ownerId}`;
      throw new HookfleetError('forbidden', `ownerId: ${message}`, 403, [
        { path: 'ownerId', message },
      ]);
    }
    const pageSize = query.limit ?? DEFAULT_PAGE_SIZE;
    const rows = await listMessagesPage(db, {
      ownerId,
      limit: pageSize + 1,
      beforeId: query.cursor,
    });
    const page = rows.slice(0, pageSize);
    return c.json({
      data: page.map((row) => ({
        id: row.id,
        eventType: row.eventType,
        ownerId: row.ownerId ?? null,
        createdAt: row.createdAt.toISOString(),
        endpointIds: row.endpointIds,
      })),
      nextCursor: rows.length > pageSize ? page[page.length - 1]!.id : null,
    });
  });

  app.get('/:id', async (c) => {
    const message = await requireMessage(c, c.req.param('id'));
    const [attempts, sending] = await Promise.all([
      findAttemptsForMessage(db, message.id),
      inFlight(message),
    ]);
    return c.json(toMessageView(message, attempts, sending));
  });

  app.post('/:id/redeliver', async (c) => {
    const message = await requireMessage(c, c.req.param('id'));
    const input = await readJson(c, redeliverRequest, {
      limitBytes: SMALL_BODY_LIMIT_BYTES,
      optional: true,
    });
    const endpointIds = input.endpointIds ?? message.endpointIds;
    const fanOut = new Set(message.endpointIds);
    const strangers = endpointIds.flatMap((id, index) => (fanOut.has(id) ? [] : [{ id, index }]));
    if (strangers.length > 0) {
      const fields = strangers.map(({ id, index }) => ({
        path: `endpointIds.${index}`,
        message: `${id} was not a recipient of ${message.id}`,
      }));
      throw new HookfleetError(
        'validation_failed',
        fields.map((f) => `${f.path}: ${f.message}`).join('; '),
        422,
        fields,
      );
    }
    requireRedis(deps.redisReady);
    const redeliveries = await redeliverMessage(
      deps.deliveriesQueue.forMessage(message.id),
      message,
      [...new Set(endpointIds)],
      { messagesQueue: deps.messagesQueue.forMessage(message.id) },
    );
    return c.json({ id: message.id, redeliveries }, 202);
  });

  return app;
}
