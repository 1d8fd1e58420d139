/**
 * How long a shutdown may wait, decided when the signal arrives. Normally the whole
 * HOOKFLEET_SHUTDOWN_TIMEOUT_MS, so deliveries in flight finish. With Redis or PostgreSQL down,
 * the parts that wait on them would wait the whole budget for nothing (a BullMQ worker's close
 * waits on its dead connection, the success recorder retries its flush, ioredis reconnects), and
 * a user who pressed Ctrl-C waits 30 s: the budget shrinks to DEGRADED_SHUTDOWN_MS. Jobs then
 * left active return to the queue when their locks expire (at-least-once, as after a crash).
 */
import type { Logger } from './logger.js';
import type { RedisTarget } from './redis.js';
import { checkPostgres, checkRedis } from './startupChecks.js';

/** How long each probe waits for an answer. */
const PROBE_MS = 500;
/**
 * Budget when a backing store is down: with the probe and the embedded PostgreSQL's stop
 * (Lifecycle's `always` resources, at most 2.5 s) the process exits within 5 s.
 */
export const DEGRADED_SHUTDOWN_MS = 2000;

export interface BackingStores {
  redis?: RedisTarget;
  /** A function, since the embedded PostgreSQL's URL is known only once it has started. */
  databaseUrl?: () => string | undefined;
}

/** A `budget` for closeOnSignals (lifecycle.ts) that probes `stores` at the signal. */
export function shutdownBudget(stores: BackingStores, logger: Logger) {
  return async (timeoutMs: number): Promise<number> => {
    const databaseUrl = stores.databaseUrl?.();
    const probes: Promise<void>[] = [];
    if (stores.redis !== undefined) probes.push(checkRedis(stores.redis, PROBE_MS));
    if (databaseUrl !== undefined) probes.push(checkPostgres(databaseUrl, PROBE_MS));
    const failed = (await Promise.allSettled(probes)).find((p) => p.status === 'rejected');
    if (failed === undefined) return timeoutMs;
    const ms = Math.min(timeoutMs, DEGRADED_SHUTDOWN_MS);
    logger.warn(
      { reason: (failed.reason as Error).message, timeoutMs: ms },
      'a backing store is down: shutting down without waiting for it',
    );
    return ms;
  };
}
