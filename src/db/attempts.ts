import { and, asc, eq, gte, sql } from 'drizzle-orm';
import type { Database } from './client.js';
import { attempts } from './schema.js';

export type AttemptSelect = typeof attempts.$inferSelect;

/** Most attempt rows one message view returns; a message has a handful per endpoint. */
export const MAX_ATTEMPTS_PER_MESSAGE = 5000;

/**
 * The attempts of one message, oldest first (served by attempts_message_idx). Rows arrive in
 * batches from the workers' success recorders, so the newest attempts can lag by the flush
 * interval (HOOKFLEET_RECORDER_FLUSH_MS).
 */
export async function findAttemptsForMessage(
  db: Database,
  messageId: string,
  limit = MAX_ATTEMPTS_PER_MESSAGE,
): Promise<AttemptSelect[]> {
  return db
    .select()
    .from(attempts)
    .where(eq(attempts.messageId, messageId))
    .orderBy(asc(attempts.attemptedAt), asc(attempts.id))
    .limit(limit);
}

export interface EndpointAttemptStats {
  attempts: number;
  succeeded: number;
  failed: number;
  /** Succeeded / attempts; null without attempts. */
  successRate: number | null;
  meanLatencyMs: number | null;
  p95LatencyMs: number | null;
}

/**
 * Attempt statistics of one endpoint since `since`. Bounded by time, not by history: the range
 * scan on attempts_endpoint_time_idx (endpoint_id, attempted_at) reads only the window's rows.
 */
export async function endpointAttemptStats(
  db: Database,
  endpointId: string,
  since: Date,
): Promise<EndpointAttemptStats> {
  const [row] = await db
    .select({
      attempts: sql<number>`count(*)::int`,
      succeeded: sql<number>`(count(*) filter (where ${attempts.outcome} = 'succeeded'))::int`,
      meanLatencyMs: sql<number | null>`avg(${attempts.durationMs})::float8`,
      p95LatencyMs: sql<
        number | null
      >`(percentile_cont(0.95) within group (order by ${attempts.durationMs}))::float8`,
    })
    .from(attempts)
    .where(and(eq(attempts.endpointId, endpointId), gte(attempts.attemptedAt, since)));
  const total = row?.attempts ?? 0;
  const succeeded = row?.succeeded ?? 0;
  return {
    attempts: total,
    succeeded,
    failed: total - succeeded,
    successRate: total === 0 ? null : succeeded / total,
    meanLatencyMs: roundOrNull(row?.meanLatencyMs ?? null),
    p95LatencyMs: roundOrNull(row?.p95LatencyMs ?? null),
  };
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(Number(value) * 10) / 10;
}
