/**
 * Which endpoints of a message a fan-out has finished with, as a Redis bitmap indexed by the
 * endpoint's position in the message's endpoint set (fixed at acceptance): one SETBIT per
 * delivery, about 1.3 KB for 10,000 endpoints. A fan-out taken over from a killed worker skips
 * what is marked, so the deliveries sent twice are at most those that were in flight. "Finished"
 * means the outcome is safe elsewhere: a success (the recorder has it), or a delivery job that
 * carries the rest (a retry, a postponement, a guard of a slow attempt). Deleted when the fan-out
 * completes; the expiry only clears bitmaps of fan-outs that never complete.
 */
import type { RedisClient } from '../redis.js';

/** Longer than any fan-out could take, including its takeovers. */
const PROGRESS_TTL_MS = 24 * 3600 * 1000;

export interface FanOutProgress {
  /**
   * The positions already finished (none for a first run); creates the bitmap with its expiry,
   * so marking a position is one SETBIT.
   */
  finished(messageId: string): Promise<(index: number) => boolean>;
  mark(messageId: string, index: number): Promise<void>;
  clear(messageId: string): Promise<void>;
}

export function createFanOutProgress(redis: RedisClient, prefix: string): FanOutProgress {
  // The queue prefix keeps test runs apart and, wrapped in {braces}, keeps a Redis Cluster slot.
  const key = (messageId: string) => `${prefix}:fan-out:${messageId}`;
  return {
    async finished(messageId) {
      const bits = await redis.getBuffer(key(messageId));
      if (!bits) {
        await redis.set(key(messageId), '', 'PX', PROGRESS_TTL_MS, 'NX');
        return () => false;
      }
      // Redis numbers a bitmap's bits from the most significant bit of its first byte.
      return (index) => (((bits[index >> 3] ?? 0) >> (7 - (index & 7))) & 1) === 1;
    },
    async mark(messageId, index) {
      // SETBIT keeps the expiry set when the bitmap was created.
      await redis.setbit(key(messageId), index, 1);
    },
    async clear(messageId) {
      await redis.del(key(messageId));
    },
  };
}
