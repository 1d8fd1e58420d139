/** `/v1/messages`: send (fan out), read with deliveries and attempts, redeliver. */
import type { Queue } from 'bullmq';
import { Hono } from 'hono';
import type { Config } from '../config.js';
import { findAttemptsForMessage } from '../db/attempts.js';
import type { DbClient } from '../db/client.js';
import { findMessage } from '../db/messages.js';
import type { MessageRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import type { DeliveryJobData } from '../jobs.js';
import { messageIdSchema } from '../ids.js';
import { redeliverRequest, sendMessageRequest } from './contracts.js';
import { requireRedis } from '../unavailable.js';
import { readJson } from './jsonBody.js';
import type { Producer } from '../producer/producer.js';
import { redeliverMessage } from '../producer/redeliver.js';
import { toMessageView } from '../views.js';

/**
 * Room for the request's envelope (event type, idempotency key, up to 1000 endpoint ids) on top
 * of the payload limit: the body may be this much larger than HOOKFLEET_MAX_PAYLOAD_BYTES, and
 * the payload itself is then held to the limit exactly by the Producer (also a 413).
 */
export const ENVELOPE_ALLOWANCE_BYTES = 64 * 1024;
const SMALL_BODY_LIMIT_BYTES = 64 * 1024;

export interface MessageRoutesDeps {
  config: Config;
  dbClient: DbClient;
  producer: Producer;
  deliveriesQueue: Queue<DeliveryJobData>;
  redisReady: () => boolean;
}

export function messageRoutes(deps: MessageRoutesDeps): Hono {
  const { db } = deps.dbClient;
  const app = new Hono();

  async function requireMessage(id: string): Promise<MessageRow> {
    const row = messageIdSchema.safeParse(id).success ? await findMessage(db, id) : undefined;
    if (!row)
      throw new HookfleetError(
        'not_found',
        `no message with id ${JSON.stringify(id.slice(0, 100))}`,
        404,
      );
    return row;
  }

  app.post('/', async (c) => {
    const input = await readJson(c, sendMessageRequest, {
      limitBytes: deps.config.maxPayloadBytes + ENVELOPE_ALLOWANCE_BYTES,
    });
    requireRedis(deps.redisReady);
    const result = await deps.producer.send(input);
    return c.json(result, 202);
  });

  app.get('/:id', async (c) => {
    const message = await requireMessage(c.req.param('id'));
    const attempts = await findAttemptsForMessage(db, message.id);
    return c.json(toMessageView(message, attempts));
  });

  app.post('/:id/redeliver', async (c) => {
    const message = await requireMessage(c.req.param('id'));
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
    const redeliveries = await redeliverMessage(deps.deliveriesQueue, message, [
      ...new Set(endpointIds),
    ]);
    return c.json({ id: message.id, redeliveries }, 202);
  });

  return app;
}
