/**
 * The HTTP API's request and response contracts, as zod schemas. Requests are parsed with them
 * (strict objects: an unknown field is a 422, not silently ignored), responses are typed by them,
 * and /openapi.json is generated from them (see openapi.ts), so the three cannot drift apart.
 * Every schema with an `id` in `contracts` becomes a named OpenAPI component.
 */
import { z } from 'zod';
import { endpointIdSchema } from '../ids.js';
import { sendInputSchema } from '../producer/sendInput.js';
import {
  attemptSchema,
  endpointHealthSchema,
  endpointSchema,
  jsonValueSchema,
  messageSchema,
} from '../views.js';

// The views (views.ts) are API responses too: registered below and re-exported, so every
// contract the API answers with can be found here.
export {
  attemptSchema,
  deliveryStatusSchema,
  endpointHealthSchema,
  endpointSchema,
  jsonValueSchema,
  messageSchema,
  type EndpointView,
  type MessageView,
} from '../views.js';

/** Named schemas, for the OpenAPI document. */
export const contracts = z.registry<{ id: string; description?: string }>();

const NUL = '\u0000';
/** PostgreSQL text and jsonb cannot hold NUL; refused here rather than failing in the database. */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((value) => !value.includes(NUL), 'must not contain NUL (\\u0000) characters');

/** The event type of a message (same rule as the library's Producer.send). */
export const eventTypeSchema = sendInputSchema.shape.eventType;

/** What an endpoint subscribes to: an event type, a prefix wildcard such as `invoice.*`, or `*`. */
export const eventTypePatternSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(
    /^(?:\*|[A-Za-z0-9_.:-]+?(?:\.\*)?)$/,
    'expected an event type (invoice.paid), a prefix wildcard (invoice.*) or * for every type',
  );

/** Shape only; whether the address may be reached is the address guard's call (endpointUrl.ts). */
export const endpointUrlSchema = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected an absolute http:// or https:// URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({
        code: 'custom',
        message: `expected an http:// or https:// URL, got ${url.protocol}`,
      });
    } else if (url.username !== '' || url.password !== '') {
      ctx.addIssue({
        code: 'custom',
        message: 'must not contain credentials (user:password@); authenticate with the signature',
      });
    }
  });

const staleAfterDays = z.number().int().min(1).max(36_500);
const timestamp = z.iso.datetime();
contracts.add(jsonValueSchema, { id: 'JsonValue' });

export const errorSchema = z
  .strictObject({
    /** Stable, machine-readable: validation_failed, not_found, unauthorized, … */
    code: z.string(),
    detail: z.string(),
    fields: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
  })
  .register(contracts, { id: 'Error' });

export const createEndpointRequest = z
  .strictObject({
    url: endpointUrlSchema,
    /** Empty or absent: every event type. */
    eventTypes: z.array(eventTypePatternSchema).max(100).optional(),
    description: text(1000).optional(),
    /** Days without a success before the sweep deactivates it; default HOOKFLEET_STALE_AFTER_DAYS. */
    staleAfterDays: staleAfterDays.nullable().optional(),
    /** Send a signed test event first and refuse the endpoint unless it answers 2xx. */
    verify: z.boolean().optional(),
  })
  .register(contracts, { id: 'CreateEndpointRequest' });

export const updateEndpointRequest = z
  .strictObject({
    url: endpointUrlSchema.optional(),
    eventTypes: z.array(eventTypePatternSchema).max(100).optional(),
    description: text(1000).optional(),
    /** Null restores the default. */
    staleAfterDays: staleAfterDays.nullable().optional(),
    /** true re-enables (and restarts the stale clock); false disables with reason 'manual'. */
    active: z.boolean().optional(),
  })
  .refine((changes) => Object.keys(changes).length > 0, 'expected at least one field to change')
  .register(contracts, { id: 'UpdateEndpointRequest' });

export const listEndpointsQuery = z.strictObject({
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'expected a whole number from 1 to 100')
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, 'expected a whole number from 1 to 100')
        .max(100, 'expected a whole number from 1 to 100'),
    )
    .optional(),
  /** The `nextCursor` of the previous page. */
  cursor: endpointIdSchema.optional(),
});

export const testEndpointRequest = z
  .strictObject({
    eventType: eventTypeSchema.optional(),
    payload: jsonValueSchema.optional(),
  })
  .register(contracts, { id: 'TestEndpointRequest' });

/** rotate-secret takes no options; a body, if any, must be `{}`. */
export const rotateSecretRequest = z.strictObject({});

contracts.add(endpointSchema, { id: 'Endpoint' });

export const createdEndpointSchema = endpointSchema
  .extend({
    secret: z.string().describe('The whsec_ signing secret; shown only here and by rotate-secret.'),
  })
  .register(contracts, { id: 'CreatedEndpoint' });

contracts.add(endpointHealthSchema, { id: 'EndpointWithHealth' });

export const endpointListSchema = z
  .strictObject({ data: z.array(endpointSchema), nextCursor: z.string().nullable() })
  .register(contracts, { id: 'EndpointList' });

export const rotatedSecretSchema = z
  .strictObject({ id: z.string(), secret: z.string(), previousSecretExpiresAt: timestamp })
  .register(contracts, { id: 'RotatedSecret' });

/**
 * Replay the endpoint's failed deliveries since a time (Svix's "recover"). `since` needs a time
 * zone (Z or an offset) and must not be in the future.
 */
export const recoverEndpointRequest = z
  .strictObject({
    since: z.iso
      .datetime({
        offset: true,
        error: 'expected an ISO 8601 date-time with a time zone, such as 2024-05-01T12:00:00Z',
      })
      .refine((value) => Date.parse(value) <= Date.now(), 'must not be in the future'),
  })
  .register(contracts, { id: 'RecoverEndpointRequest' });

export const recoverEndpointResponse = z
  .strictObject({
    /** Failed deliveries found since `since`. */
    total: z.number().int(),
    /** Failed jobs put back in the queue, with the whole retry schedule again. */
    retried: z.number().int(),
    /** New jobs, where the failed one had been removed by its retention. */
    enqueued: z.number().int(),
    /** Already queued again (e.g. replayed from Bull Board): left alone. */
    pending: z.number().int(),
  })
  .register(contracts, { id: 'RecoverEndpointResponse' });

export const sendMessageRequest = z
  .strictObject({
    eventType: eventTypeSchema,
    payload: jsonValueSchema,
    /** A send with a key used before enqueues nothing new and answers with the first message. */
    idempotencyKey: text(256).min(1).optional(),
    /** Narrow the fan-out to these endpoints (still only active, subscribed ones). */
    endpointIds: z.array(endpointIdSchema).min(1).max(1000).optional(),
  })
  .register(contracts, { id: 'SendMessageRequest' });

export const sendMessageResponse = z
  .strictObject({
    id: z.string(),
    deliveries: z.number().int(),
    endpointIds: z.array(z.string()),
    duplicate: z.boolean(),
  })
  .register(contracts, { id: 'SendMessageResponse' });

contracts.add(attemptSchema, { id: 'Attempt' });

contracts.add(messageSchema, { id: 'Message' });

export const redeliverRequest = z
  .strictObject({ endpointIds: z.array(endpointIdSchema).min(1).max(1000).optional() })
  .register(contracts, { id: 'RedeliverRequest' });

export const redeliverResponse = z
  .strictObject({
    id: z.string(),
    redeliveries: z.array(
      z.strictObject({
        endpointId: z.string(),
        /** retried: the failed job went back to the queue; enqueued: a new job; pending: still queued, left alone. */
        action: z.enum(['retried', 'enqueued', 'pending']),
        jobId: z.string(),
      }),
    ),
  })
  .register(contracts, { id: 'RedeliverResponse' });

export const healthSchema = z
  .strictObject({
    status: z.enum(['ok', 'unavailable']),
    redis: z.enum(['up', 'down']),
    postgres: z.enum(['up', 'down']),
  })
  .register(contracts, { id: 'Health' });
