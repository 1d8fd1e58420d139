/**
 * Drizzle schema. Migrations in drizzle/ are generated from this file with `npm run db:generate`
 * and never edited by hand; a test checks the two agree.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  smallint,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** A receiver's URL, what it subscribes to, its secret, and its health. */
export const endpoints = pgTable(
  'endpoints',
  {
    id: text('id').primaryKey(),
    url: text('url').notNull(),
    /**
     * The platform's own id for the customer this endpoint belongs to (see ids.ts); null for
     * a platform-wide endpoint. A message reaches only endpoints of its own owner (or, without
     * one, only endpoints without one). Never changed after creation.
     */
    ownerId: text('owner_id'),
    description: text('description').notNull().default(''),
    /** Current `whsec_` signing secret. */
    secret: text('secret').notNull(),
    /** The secret before the last rotation, still signed with until `previous_secret_expires_at`. */
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: tz('previous_secret_expires_at'),
    /** Event types delivered to this endpoint; empty means every type. */
    eventTypes: text('event_types')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    active: boolean('active').notNull().default(true),
    createdAt: tz('created_at').notNull().defaultNow(),
    /** Set when a deactivated endpoint is enabled again: the stale clock restarts from here. */
    reactivatedAt: tz('reactivated_at'),
    /** Newest 2xx; only ever moves forward (see worker/successRecorder.ts). */
    lastSuccessAt: tz('last_success_at'),
    /**
     * `last_success_at` cut down to its UTC day, for the stale-clock index. Indexing the exact
     * time made every recorded success a non-HOT update: a new row version and a new entry in
     * each index, so the table and the fan-out's GIN index bloated between vacuums (150,000 dead
     * versions of 100 rows in one test; fan-out inserts 50% slower). This value changes once a
     * day, so the recorder's updates stay HOT (99.5% measured) and the index stays small.
     */
    lastSuccessDay: tz('last_success_day').generatedAlwaysAs(
      sql`date_bin('1 day', last_success_at, timestamptz '2000-01-01 00:00:00+00')`,
    ),
    lastFailureAt: tz('last_failure_at'),
    /** Failed attempts since the last success. */
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    successCount: bigint('success_count', { mode: 'number' }).notNull().default(0),
    failureCount: bigint('failure_count', { mode: 'number' }).notNull().default(0),
    /** Per-endpoint stale threshold; null means HOOKFLEET_STALE_AFTER_DAYS. */
    staleAfterDays: integer('stale_after_days'),
    /**
     * Most requests per second the fleet sends this endpoint (checked beside the in-flight limit,
     * endpointLimits.ts); null: no such limit.
     */
    rateLimitPerSecond: integer('rate_limit_per_second'),
    deactivatedAt: tz('deactivated_at'),
    /** Why the endpoint was deactivated: 'stale', 'manual', … */
    deactivationReason: text('deactivation_reason'),
    /**
     * When the sweep last reported `endpoint.stale_warning`. The warning counts only while it is
     * newer than the stale clock, so a later success or a reactivation re-arms it without a reset.
     */
    staleWarnedAt: tz('stale_warned_at'),
    /**
     * When the stale sweep sent it a `hookfleet.ping` because it was stale but idle (no failed
     * attempt since its clock started). Like stale_warned_at it counts only while newer than the
     * clock: a 2xx moves the clock past it, so each stale period gets one probe, not one a sweep.
     */
    staleProbedAt: tz('stale_probed_at'),
    /**
     * When its attempts started failing with no success since: set by the success recorder at the
     * first failure after a success (clamped to the database's clock, never moved while failing),
     * cleared by a success and by re-enabling. The maintenance queue disables an endpoint failing
     * for longer than its threshold (reason `failing`).
     */
    failingSince: tz('failing_since'),
    /** When `endpoint.failing_warning` was last reported; counts only while newer than `failing_since`. */
    failingWarnedAt: tz('failing_warned_at'),
    /** Per-endpoint failing threshold in hours; null means HOOKFLEET_FAILING_DISABLE_AFTER_HOURS. */
    failingDisableAfterHours: integer('failing_disable_after_hours'),
    /**
     * 'envelope': the body is the Standard Webhooks envelope {"type","timestamp","data"} around
     * the payload (src/delivery/envelope.ts); 'raw': the payload alone. Endpoints created before
     * the envelope existed were set to 'raw' by their migration, so their receivers see no change.
     */
    payloadFormat: text('payload_format').$type<'envelope' | 'raw'>().notNull().default('envelope'),
    /**
     * Extra request headers sent on every attempt, name -> value, checked by
     * delivery/endpointHeaders.ts (no hop-by-hop or webhook-* names). Values may be credentials:
     * views show names only, with masked values.
     */
    headers: jsonb('headers').$type<Record<string, string>>().notNull().default({}),
    /** Delays before each retry, in ms; null means HOOKFLEET_RETRY_SCHEDULE. */
    retryScheduleMs: integer('retry_schedule_ms').array(),
  },
  (t) => [
    // Fan-out of a message without an owner: active ownerless endpoints whose event_types
    // contain the message's type (or are empty). Owned endpoints stay out of it, so platform-wide
    // sends do not scan every customer's subscriptions.
    index('endpoints_event_types_active_idx')
      .using('gin', t.eventTypes)
      .where(sql`${t.active} and ${t.ownerId} is null`),
    // Fan-out of a message for an owner, and GET /v1/endpoints?ownerId=: an owner has a handful
    // of endpoints, so their event types are checked row by row after this lookup. Measured with
    // 200,000 endpoints of 20,000 owners: an owner's fan-out reads its 10 rows here (0.2 ms),
    // and an ownerless one reads only the 2,000 ownerless rows through the GIN index above.
    index('endpoints_owner_idx')
      .on(t.ownerId, t.id)
      .where(sql`${t.ownerId} is not null`),
    // Stale sweep: active endpoints ordered by (a lower bound of) the moment their stale clock
    // started; by the day of the last success, not its exact time (see lastSuccessDay).
    index('endpoints_stale_clock_active_idx')
      .on(sql`coalesce(${t.lastSuccessDay}, ${t.reactivatedAt}, ${t.createdAt})`)
      .where(sql`${t.active}`),
    // Stale sweep: the (usually few) active endpoints with a threshold of their own, so those
    // shorter than the default are found without scanning the whole clock index.
    index('endpoints_stale_after_days_active_idx')
      .on(t.staleAfterDays)
      .where(sql`${t.active} and ${t.staleAfterDays} is not null`),
    // Failing sweep: the (few) active endpoints failing right now. failing_since changes only when
    // an endpoint starts or stops failing, so the recorder's updates of healthy endpoints stay HOT.
    index('endpoints_failing_since_active_idx')
      .on(t.failingSince)
      .where(sql`${t.active} and ${t.failingSince} is not null`),
    // Clearing expired previous secrets (maintenance): only endpoints mid-rotation are indexed,
    // so the index stays a handful of rows however many endpoints there are.
    index('endpoints_previous_secret_expires_idx')
      .on(t.previousSecretExpiresAt)
      .where(sql`${t.previousSecret} is not null`),
  ],
);

/** One event handed to hookfleet, fanned out to `endpoint_ids`. */
export const messages = pgTable(
  'messages',
  {
    id: text('id').primaryKey(),
    eventType: text('event_type').notNull(),
    /** The owner whose endpoints it was fanned out to; null: endpoints without an owner. */
    ownerId: text('owner_id'),
    payload: jsonb('payload').notNull(),
    /**
     * The exact bytes signed and sent on every attempt. `payload` is jsonb, which reorders keys
     * and drops duplicates, so it cannot give them back. Null for messages accepted before this
     * column existed: their body is in their delivery jobs, or re-serialised from `payload`.
     */
    body: text('body'),
    /**
     * Whether deliveries may wrap `body` in the Standard Webhooks envelope (type and `created_at`).
     * False for messages accepted before the envelope existed: their first attempts sent the bare
     * body, so every later attempt, redeliver and replay sends it bare too (identical bytes).
     */
    envelope: boolean('envelope').notNull().default(false),
    idempotencyKey: text('idempotency_key'),
    /** The endpoints this message was fanned out to, fixed when it was accepted. */
    endpointIds: text('endpoint_ids').array().notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
    /**
     * Set once the message's fan-out job is in Redis. Null on a message stored but not queued (the
     * process died between the two steps): a retried send with its idempotency key, or the
     * reconciler (worker/unqueuedMessages.ts), queues it.
     */
    enqueuedAt: tz('enqueued_at'),
  },
  (t) => [
    uniqueIndex('messages_idempotency_key_idx').on(t.idempotencyKey),
    index('messages_created_at_idx').on(t.createdAt),
    // An owner's recent messages (the customer portal), newest first.
    index('messages_owner_created_at_idx')
      .on(t.ownerId, t.createdAt)
      .where(sql`${t.ownerId} is not null`),
    // The reconciler's scan for messages stored but never queued: only those rows are indexed
    // (a send marks its messages within milliseconds), so the scan costs nothing when all is well.
    index('messages_not_enqueued_idx')
      .on(t.createdAt)
      .where(sql`${t.enqueuedAt} is null`),
  ],
);

/**
 * Customer portal sessions (POST /v1/owners/:ownerId/portal-sessions): a Bearer token limited
 * to one owner's endpoints and messages. Only a SHA-256 digest of the token's secret part is
 * stored, so a read of this table hands out no working token. Kept in PostgreSQL rather than in
 * one api process's memory, so every api process agrees and a revocation holds at once.
 */
export const portalSessions = pgTable(
  'portal_sessions',
  {
    /** `ps_…`; also the token's first part, so a request finds its row by primary key. */
    id: text('id').primaryKey(),
    ownerId: text('owner_id').notNull(),
    /** Hex SHA-256 of the token's secret part. */
    tokenHash: text('token_hash').notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
    expiresAt: tz('expires_at').notNull(),
    revokedAt: tz('revoked_at'),
  },
  (t) => [
    index('portal_sessions_owner_idx').on(t.ownerId, t.expiresAt),
    // Pruning sessions that ended (expired, or revoked: least() skips a null revoked_at) a
    // while ago, oldest first, in bounded batches.
    index('portal_sessions_ended_idx').on(sql`least(${t.expiresAt}, ${t.revokedAt})`),
  ],
);

/** Every HTTP attempt of every delivery, written in batches by the success recorder. */
export const attempts = pgTable(
  'attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    messageId: text('message_id').notNull(),
    endpointId: text('endpoint_id').notNull(),
    /** 1 for the first attempt. */
    attemptNumber: smallint('attempt_number').notNull(),
    attemptedAt: tz('attempted_at').notNull(),
    /** 'succeeded' | 'retrying' | 'failed' (no further attempt will be made). */
    outcome: text('outcome').notNull(),
    statusCode: smallint('status_code'),
    durationMs: integer('duration_ms').notNull(),
    error: text('error'),
  },
  (t) => [
    index('attempts_message_idx').on(t.messageId),
    index('attempts_endpoint_time_idx').on(t.endpointId, t.attemptedAt),
    index('attempts_attempted_at_idx').on(t.attemptedAt),
  ],
);

export type EndpointRow = typeof endpoints.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
export type AttemptRow = typeof attempts.$inferInsert;
export type PortalSessionRow = typeof portalSessions.$inferSelect;
