/**
 * Each owner's share of the `messages` queue, so one customer's flood (100,000 messages to a
 * slow endpoint) does not make every other customer wait behind it.
 *
 * The queue is first in, first out, and a fan-out takes little time whatever its endpoints do
 * (deliveries a busy endpoint cannot take are postponed into jobs of their own), so what a flood
 * costs the other owners is its place in that line: 100,000 fan-outs ahead of
 * theirs. So each owner's fan-outs waiting or running are counted in Redis, and the producer gives
 * an owner's message a BullMQ priority by its rank among them: the first `share` go in the
 * ordinary waiting list, the next get priority 1, 2, 3… BullMQ takes every job of the waiting
 * list before any prioritized one, and prioritized ones lowest number first, so owners within
 * their share go first, and owners over it are served in turn (each one's 1st extra message, then
 * each one's 2nd…) rather than whoever sent first. Messages without an owner count as one owner.
 *
 * Keys: one counter per owner, `{o=<owner>}` as its hash tag (owner ids hold no braces), so each
 * call touches one Redis Cluster slot and owners spread over the cluster. It is a separate round
 * trip per owner and batch from the enqueue itself (per batch, not per message), and one per owner
 * and turn of a worker's event loop as fan-outs complete; the endpoint limits' scripts stay on
 * their endpoint's slot.
 * A count can only drift up when a fan-out job fails for good or is removed by hand; the key
 * expires an hour after the owner's last message, which bounds that.
 */
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../redis.js';
import { turnBatch } from '../turnBatch.js';

/** BullMQ refuses priorities above 2^21 - 1. */
const PRIORITY_LIMIT = 2 ** 21 - 1;
/** An owner's count lives this long after its last message. */
const COUNT_TTL_MS = 3600_000;

const LEAVE_SCRIPT = readFileSync(new URL('./ownerQueueLeave.lua', import.meta.url), 'utf8');

/** The counter of an owner's fan-outs in the queue; `null`: messages without an owner. */
export function ownerQueueKey(prefix: string, ownerId: string | null): string {
  return `${prefix}:owner:{${ownerId === null ? 'none' : `o=${ownerId}`}}:queued`;
}

/**
 * Counts these messages (in order; one owner id each) into their owners' places in the queue and
 * returns the BullMQ priority of each: 0 within the owner's share, else its rank beyond it.
 */
export async function takeOwnerPlaces(
  redis: Redis | Cluster,
  prefix: string,
  share: number,
  ownerIds: readonly (string | null)[],
): Promise<number[]> {
  const byOwner = new Map<string | null, number[]>();
  ownerIds.forEach((ownerId, index) => {
    const indexes = byOwner.get(ownerId);
    if (indexes) indexes.push(index);
    else byOwner.set(ownerId, [index]);
  });
  const priorities = new Array<number>(ownerIds.length).fill(0);
  await Promise.all(
    [...byOwner].map(async ([ownerId, indexes]) => {
      const key = ownerQueueKey(prefix, ownerId);
      const [counted] = await Promise.all([
        redis.incrby(key, indexes.length),
        redis.pexpire(key, COUNT_TTL_MS),
      ]);
      const firstRank = counted - indexes.length + 1;
      indexes.forEach((index, i) => {
        priorities[index] = Math.min(Math.max(0, firstRank + i - share), PRIORITY_LIMIT);
      });
    }),
  );
  return priorities;
}

/** Where owners' places are counted, and the share (HOOKFLEET_OWNER_QUEUE_SHARE; 0: off). */
export interface OwnerShares {
  redis: RedisClient;
  prefix: string;
  share: number;
}

/** The places of messages of these owners (jobs.ts addMessageJobs), or undefined when shares are off. */
export async function ownerPlaces(
  shares: OwnerShares | undefined,
  ownerIds: readonly (string | null)[],
): Promise<{ ownerIds: readonly (string | null)[]; priorities: number[] } | undefined> {
  if (!shares || shares.share <= 0) return undefined;
  const priorities = await takeOwnerPlaces(shares.redis, shares.prefix, shares.share, ownerIds);
  return { ownerIds, priorities };
}

type LeaveRedis = (Redis | Cluster) & {
  hookfleetLeaveOwnerQueue?: (key: string, count: number) => Promise<number>;
};

/** Most finished fan-outs of one turn gathered into one batch of leave calls. */
const MAX_LEAVES_PER_TURN = 1000;

/**
 * What a worker calls when one fan-out of an owner has finished. The fan-outs finished in one turn
 * of the event loop leave together, one call per owner (turnBatch.ts): with one endpoint per
 * message, a call per fan-out was a Redis round trip per delivery.
 *
 * The script is defined on the connection here, once, before any traffic.
 */
export function ownerQueueLeaver(
  redis: Redis | Cluster,
  prefix: string,
): (ownerId: string | null) => Promise<void> {
  const r = redis as LeaveRedis;
  if (typeof r.hookfleetLeaveOwnerQueue !== 'function') {
    r.defineCommand('hookfleetLeaveOwnerQueue', { numberOfKeys: 1, lua: LEAVE_SCRIPT });
  }
  return turnBatch<string | null, void>(async (ownerIds) => {
    const counts = new Map<string | null, number>();
    for (const ownerId of ownerIds) counts.set(ownerId, (counts.get(ownerId) ?? 0) + 1);
    const failed = new Map<string | null, Error>();
    await Promise.all(
      [...counts].map(async ([ownerId, count]) => {
        try {
          await r.hookfleetLeaveOwnerQueue!(ownerQueueKey(prefix, ownerId), count);
        } catch (error) {
          failed.set(ownerId, error instanceof Error ? error : new Error(String(error)));
        }
      }),
    );
    return ownerIds.map((ownerId) => failed.get(ownerId));
  }, MAX_LEAVES_PER_TURN);
}
