/**
 * Which deliveries are being sent now, for the `in_flight` status the API and `hookfleet messages
 * show` give. The endpoint limits' in-flight sets cannot tell: they count places, and a place a
 * worker keeps carries one delivery after another (endpointLimits.ts). So an attempt says here that
 * it is sending, once it has been for SENDING_VISIBLE_AFTER_MS: a sorted set per endpoint of the
 * ids of messages being sent to it, scored by when the entry lapses (a worker that died leaves
 * nothing for longer). Nearly every attempt ends sooner and writes nothing, so a healthy fleet
 * pays a timer per attempt, not a Redis call; what a user polling a delivery misses is its first
 * tenth of a second of sending.
 */
import type { Logger } from '../logger.js';
import type { RedisClient } from '../redis.js';
import { endpointLimitsKey } from './endpointLimits.js';

/** How long an attempt sends before it shows as `in_flight`. */
export const SENDING_VISIBLE_AFTER_MS = 100;

/** Beside the endpoint's limits, in its Redis Cluster slot. */
function sendingKey(prefix: string, endpointId: string): string {
  return endpointLimitsKey(prefix, endpointId, 'sending');
}

export interface DeliveriesSending {
  /** An attempt of `messageId` to `endpointId` is going out; call what it returns when it ends. */
  started(messageId: string, endpointId: string): () => void;
}

export function createDeliveriesSending(options: {
  redis: RedisClient;
  prefix: string;
  /** How long an entry lasts if its attempt's end never removes it: the limits' lease. */
  leaseMs: number;
  logger: Logger;
}): DeliveriesSending {
  const { redis, prefix, leaseMs, logger } = options;
  // Best effort: a status shown a little wrong is not worth a warning per attempt.
  const ignore = (error: unknown) => logger.debug({ err: error }, 'sending status not written');
  return {
    started(messageId, endpointId) {
      const key = sendingKey(prefix, endpointId);
      let shown = false;
      const timer = setTimeout(() => {
        shown = true;
        redis
          .zadd(key, Date.now() + leaseMs, messageId)
          .then(() => redis.pexpire(key, leaseMs))
          .catch(ignore);
      }, SENDING_VISIBLE_AFTER_MS);
      return () => {
        clearTimeout(timer);
        // The same connection keeps the order: the removal follows the addition.
        if (shown) redis.zrem(key, messageId).catch(ignore);
      };
    },
  };
}

/**
 * Which endpoints of a message have an attempt of it being sent now, by any worker (shown once it
 * has been sending for SENDING_VISIBLE_AFTER_MS).
 */
export async function readDeliveriesSending(
  redis: RedisClient,
  prefix: string,
  messageId: string,
  endpointIds: readonly string[],
  nowMs = Date.now(),
): Promise<ReadonlySet<string>> {
  // One command per endpoint rather than one pipeline: on a Redis Cluster each endpoint's set
  // may live on another node, and a cluster pipeline must stay within one slot.
  const scores = await Promise.all(
    endpointIds.map((id) => redis.zscore(sendingKey(prefix, id), messageId)),
  );
  return new Set(endpointIds.filter((_, index) => Number(scores[index] ?? 0) > nowMs));
}
