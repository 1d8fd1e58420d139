/**
 * Failed deliveries, read from the attempt history (for `hookfleet failed list|replay`,
 * `POST /v1/endpoints/:id/recover`, the endpoint health page).
 *
 * A delivery (one message to one endpoint) has failed when its newest attempt has outcome
 * 'failed': the worker wrote that outcome because no further attempt will be made (a permanent
 * failure, or the retry schedule ran out; see worker/deliveryProcessor.ts). A delivery that was
 * replayed and is being attempted again has a newer attempt ('retrying' or 'succeeded') and is no
 * longer listed. Attempt numbers restart at 1 on a replay, so "newest" is by attempted_at (then
 * id), never by attempt_number.
 *
 * Attempts reach the table in batches from the workers' success recorders, so a delivery that
 * failed in the last HOOKFLEET_RECORDER_FLUSH_MS may not be listed yet; attempts older than
 * HOOKFLEET_ATTEMPT_RETENTION_DAYS are pruned by the sweep, and so are their failures.
 */
import { and, desc, eq, gte, sql, type SQL } from 'drizzle-orm';
import type { Database } from './client.js';
import { attempts, messages } from './schema.js';

export interface FailedDelivery {
  messageId: string;
  endpointId: string;
  eventType: string;
  /** When the final attempt was made. */
  failedAt: Date;
  /** Number of the final attempt within its run of the retry schedule (1 for the first). */
  attemptNumber: number;
  /** HTTP status of the final attempt; null when the receiver did not answer. */
  statusCode: number | null;
  error: string | null;
}

export interface FailedDeliveryFilter {
  /** Only this endpoint's deliveries (a range scan of attempts_endpoint_time_idx). Default: every endpoint. */
  endpointId?: string;
  /** Only deliveries that failed at or after this time. Default: the whole retained history. */
  since?: Date;
  /** Only deliveries of this owner's messages (filtered as the scan goes). Default: every owner. */
  ownerId?: string;
}

export interface ListFailedDeliveriesOptions extends FailedDeliveryFilter {
  /** Most rows returned. Default 1000; at most MAX_FAILED_DELIVERIES_LIMIT (larger values are clamped). */
  limit?: number;
}

/**
 * Where a page ended, to read the next one. `failedAt` is attempted_at as PostgreSQL prints it
 * (microseconds and offset): a JS Date would round it to milliseconds, and rows within that
 * millisecond could then be skipped.
 */
export interface FailedDeliveryCursor {
  failedAt: string;
  messageId: string;
  endpointId: string;
}

export interface FailedDeliveryPage {
  deliveries: FailedDelivery[];
  /** Set when the page is full: pass it as `after` for the next page. */
  next: FailedDeliveryCursor | undefined;
}

export const DEFAULT_FAILED_DELIVERIES_LIMIT = 1000;
export const MAX_FAILED_DELIVERIES_LIMIT = 10_000;

/**
 * Deliveries whose newest attempt failed, newest failure first (ties broken by message id, then
 * endpoint id). With `endpointId` the scan is a backward range scan of attempts_endpoint_time_idx
 * (endpoint_id, attempted_at) bounded by `since` and `limit`; without it, of
 * attempts_attempted_at_idx. Each candidate is checked for a newer attempt of the same delivery
 * through attempts_message_idx (a handful of rows).
 */
export async function listFailedDeliveries(
  db: Database,
  options: ListFailedDeliveriesOptions,
): Promise<FailedDelivery[]> {
  return (await listFailedDeliveryPage(db, options)).deliveries;
}

/**
 * listFailedDeliveries a page at a time: the rows after `after` (the previous page's `next`) in
 * the same order, so successive pages neither skip nor repeat a delivery.
 */
export async function listFailedDeliveryPage(
  db: Database,
  options: ListFailedDeliveriesOptions & { after?: FailedDeliveryCursor | undefined },
): Promise<FailedDeliveryPage> {
  const limit = Math.min(
    Math.max(1, Math.floor(options.limit ?? DEFAULT_FAILED_DELIVERIES_LIMIT)),
    MAX_FAILED_DELIVERIES_LIMIT,
  );
  const { after } = options;
  const rows = await db
    .select({
      messageId: attempts.messageId,
      endpointId: attempts.endpointId,
      eventType: messages.eventType,
      failedAt: attempts.attemptedAt,
      attemptNumber: attempts.attemptNumber,
      statusCode: attempts.statusCode,
      error: attempts.error,
      exactFailedAt: sql<string>`${attempts.attemptedAt}::text`,
    })
    .from(attempts)
    .innerJoin(messages, eq(messages.id, attempts.messageId))
    .where(
      and(
        failedCondition(options),
        // The plain bound lets the index range stop at the cursor; the row comparison breaks ties.
        after && sql`${attempts.attemptedAt} <= ${after.failedAt}::timestamptz`,
        after &&
          sql`(${attempts.attemptedAt}, ${attempts.messageId}, ${attempts.endpointId}) < (${after.failedAt}::timestamptz, ${after.messageId}, ${after.endpointId})`,
      ),
    )
    .orderBy(desc(attempts.attemptedAt), desc(attempts.messageId), desc(attempts.endpointId))
    .limit(limit);
  const last = rows[rows.length - 1];
  return {
    deliveries: rows.map(({ exactFailedAt: _exact, ...delivery }) => delivery),
    next:
      last && rows.length === limit
        ? { failedAt: last.exactFailedAt, messageId: last.messageId, endpointId: last.endpointId }
        : undefined,
  };
}

/**
 * How many deliveries listFailedDeliveries would return without a limit: the same scan, counted
 * (replay uses it for its progress). Not bounded: it reads every attempt in the window.
 */
export async function countFailedDeliveries(
  db: Database,
  filter: FailedDeliveryFilter,
): Promise<number> {
  const [row] = await db
    .select({ count: sql<number>`count(*)::int` })
    .from(attempts)
    .innerJoin(messages, eq(messages.id, attempts.messageId))
    .where(failedCondition(filter));
  return row?.count ?? 0;
}

/** A final 'failed' attempt in the window that no later attempt of the same delivery follows. */
function failedCondition(filter: FailedDeliveryFilter): SQL | undefined {
  return and(
    eq(attempts.outcome, 'failed'),
    filter.endpointId === undefined ? undefined : eq(attempts.endpointId, filter.endpointId),
    filter.since === undefined ? undefined : gte(attempts.attemptedAt, filter.since),
    filter.ownerId === undefined ? undefined : eq(messages.ownerId, filter.ownerId),
    sql`not exists (
      select 1 from ${attempts} as later
      where later.message_id = ${attempts.messageId}
        and later.endpoint_id = ${attempts.endpointId}
        and (later.attempted_at, later.id) > (${attempts.attemptedAt}, ${attempts.id}))`,
  );
}
