/**
 * The HTTP API's request and response contracts, as zod schemas. Requests are parsed with them
 * (strict objects: an unknown field is a 422, not silently ignored), responses are typed by them,
 * and /openapi.json is generated from them (see openapi.ts), so the three cannot drift apart.
 * Every schema with an `id` in `contracts` becomes a named OpenAPI component.
 */
import { z } from 'zod';
import { endpointIdSchema, messageIdSchema, ownerIdSchema } from '../ids.js';
import {
  endpointUrlSchema,
  eventTypePatternSchema,
  failingDisableAfterHoursSchema,
  rateLimitPerSecondSchema,
  safeText as text,
  staleAfterDaysSchema,
} from '../delivery/endpointInput.js';
import { PAYLOAD_FORMATS } from '../delivery/envelope.js';
import { endpointHeadersChangeSchema, endpointHeadersSchema } from '../delivery/endpointHeaders.js';
import { retryScheduleSchema } from '../delivery/retrySchedule.js';
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

export { endpointUrlSchema, eventTypePatternSchema } from '../delivery/endpointInput.js';

/** Named schemas, for the OpenAPI document. */
export const contracts = z.registry<{ id: string; description?: string }>();

/** The event type of a message (same rule as the library's Producer.send). */
export const eventTypeSchema = sendInputSchema.shape.eventType;

const staleAfterDays = staleAfterDaysSchema;
/** Null or absent: none. */
const rateLimitPerSecond = rateLimitPerSecondSchema;
const failingDisableAfterHours = failingDisableAfterHoursSchema;
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
    /**
     * The customer it belongs to: it then receives only that owner's messages. Absent: a
     * platform-wide endpoint, receiving only messages without an owner. Cannot be changed later.
     * With a portal session token it is that session's owner whether given or not.
     */
    ownerId: ownerIdSchema.optional(),
    /** Empty or absent: every event type. */
    eventTypes: z.array(eventTypePatternSchema).max(100).optional(),
    description: text(1000).optional(),
    /** Days without a success before the sweep deactivates it; default HOOKFLEET_STALE_AFTER_DAYS. */
    staleAfterDays: staleAfterDays.nullable().optional(),
    /** Most requests per second to it, fleet-wide (1 to 10000); default none. */
    rateLimitPerSecond: rateLimitPerSecond.nullable().optional(),
    /**
     * Hours of failed attempts with no success before it is disabled (reason `failing`); default
     * HOOKFLEET_FAILING_DISABLE_AFTER_HOURS.
     */
    failingDisableAfterHours: failingDisableAfterHours.nullable().optional(),
    /** 'envelope' (default): {"type","timestamp","data"} around the payload; 'raw': the payload alone. */
    payloadFormat: z.enum(PAYLOAD_FORMATS).optional(),
    /** Extra request headers sent on every attempt (no hop-by-hop, content-type or webhook-* names). */
    headers: endpointHeadersSchema.optional(),
    /** Delays before each retry ("5s", "30m", "2h"); absent or null: HOOKFLEET_RETRY_SCHEDULE. */
    retrySchedule: retryScheduleSchema.nullable().optional(),
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
    /** Null removes the limit. */
    rateLimitPerSecond: rateLimitPerSecond.nullable().optional(),
    /** Null restores the default. */
    failingDisableAfterHours: failingDisableAfterHours.nullable().optional(),
    payloadFormat: z.enum(PAYLOAD_FORMATS).optional(),
    /** A value sets that header, null removes it; headers not named are kept. */
    headers: endpointHeadersChangeSchema.optional(),
    /** Null restores the default (HOOKFLEET_RETRY_SCHEDULE). */
    retrySchedule: retryScheduleSchema.nullable().optional(),
    /** true re-enables (and restarts the stale clock); false disables with reason 'manual'. */
    active: z.boolean().optional(),
  })
  .refine((changes) => Object.keys(changes).length > 0, 'expected at least one field to change')
  .register(contracts, { id: 'UpdateEndpointRequest' });

/** `limit` of a list's query string: 1 to 100. */
const pageLimit = z
  .string()
  .regex(/^\d{1,4}$/, 'expected a whole number from 1 to 100')
  .transform(Number)
  .pipe(
    z
      .number()
      .int()
      .min(1, 'expected a whole number from 1 to 100')
      .max(100, 'expected a whole number from 1 to 100'),
  );

export const listEndpointsQuery = z.strictObject({
  limit: pageLimit.optional(),
  /** The `nextCursor` of the previous page. */
  cursor: endpointIdSchema.optional(),
  /** Only this owner's endpoints (a portal session sees only its own owner's anyway). */
  ownerId: ownerIdSchema.optional(),
});

export const listMessagesQuery = z.strictObject({
  limit: pageLimit.optional(),
  /** The `nextCursor` of the previous page. */
  cursor: messageIdSchema.optional(),
  /** Only this owner's messages (a portal session sees only its own owner's anyway). */
  ownerId: ownerIdSchema.optional(),
});

export const messageSummarySchema = z
  .strictObject({
    id: z.string(),
    eventType: z.string(),
    ownerId: z.string().nullable(),
    createdAt: z.iso.datetime(),
    endpointIds: z.array(z.string()),
  })
  .register(contracts, { id: 'MessageSummary' });

export const messageListSchema = z
  .strictObject({ data: z.array(messageSummarySchema), nextCursor: z.string().nullable() })
  .register(contracts, { id: 'MessageList' });

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
    /** Only this owner's endpoints receive it; absent: only endpoints without an owner. */
    ownerId: ownerIdSchema.optional(),
    /** A send with a key used before enqueues nothing new and answers with the first message. */
    idempotencyKey: text(256).min(1).optional(),
    /**
     * Narrow the fan-out to these endpoints (still only active, subscribed ones of the message's
     * owner; naming another owner's endpoint is a 422).
     */
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

/** Bounds of a portal session's life: long enough for a visit, short enough to leak little. */
export const PORTAL_SESSION_SECONDS = { min: 300, default: 3600, max: 86_400 } as const;

export const createPortalSessionRequest = z
  .strictObject({
    /** Seconds until the token stops working; default 3600, from 300 (5 min) to 86400 (24 h). */
    expiresInSeconds: z
      .number()
      .int()
      .min(PORTAL_SESSION_SECONDS.min, 'expected at least 300 seconds (5 minutes)')
      .max(PORTAL_SESSION_SECONDS.max, 'expected at most 86400 seconds (24 hours)')
      .optional(),
  })
  .register(contracts, { id: 'CreatePortalSessionRequest' });

export const portalSessionSchema = z
  .strictObject({
    /** The session's id, to revoke this session alone. */
    id: z.string(),
    ownerId: z.string(),
    /** Bearer token for /v1, limited to the owner's endpoints and messages. Shown only here. */
    token: z.string(),
    /** The customer portal page for this session (the token travels in the fragment). */
    url: z.string(),
    expiresAt: timestamp,
  })
  .register(contracts, { id: 'PortalSession' });

export const revokedPortalSessionsSchema = z
  .strictObject({ revoked: z.number().int() })
  .register(contracts, { id: 'RevokedPortalSessions' });
