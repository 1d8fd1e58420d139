/**
 * Which endpoints of a message a fan-out has finished with, as a Redis bitmap indexed by the
 * endpoint's position in the message's endpoint set (fixed at acceptance), about 1.3 KB for 10,000
 * endpoints. The marks of one turn of the event loop go out as one script call
 * (fanOutProgressMark.lua, turnBatch.ts; one per message on a Redis Cluster), not a command per
 * message: broadcast fan-outs run side by side, so a turn's marks belong to many messages, and a
 * BITFIELD each cost Redis 0.025–0.027 ms of CPU per delivery against 0.018 for the script. A
 * fan-out taken over from a killed worker skips what is marked, so the deliveries sent twice are
 * at most those that were in flight. "Finished" means the outcome is safe elsewhere: a success
 * (the recorder has it), or a delivery job that carries the rest (a retry, a postponement, a guard
 * of a slow attempt). Deleted when the fan-out completes; the expiry only clears bitmaps of
 * fan-outs that never complete.
 */
import { readFileSync } from 'node:fs';
import type { QueueBackend } from '../queueBackend.js';
import type { RedisClient } from '../redis.js';
import { turnBatch } from '../turnBatch.js';

/** Read once, at module load; `npm run build` copies it next to the compiled file. */
const MARK_SCRIPT = readFileSync(new URL('./fanOutProgressMark.lua', import.meta.url), 'utf8');

/** The script as defined on a connection: the key count, the keys, then the positions. */
type MarkRedis = RedisClient & {
  hookfleetMarkFinished(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<unknown[]>;
};

/** Longer than any fan-out could take, including its takeovers. */
const PROGRESS_TTL_MS = 24 * 3600 * 1000;
/** Most marks one turn's batch carries; a worker's attempt slots bound a turn's anyway. */
const MAX_MARKS = 1000;

interface Mark {
  messageId: string;
  index: number;
}

export interface FanOutProgress {
  /**
   * The positions already finished (none for a first run); creates the bitmap with its expiry,
   * so marking positions only sets their bits.
   */
  finished(messageId: string): Promise<(index: number) => boolean>;
  mark(messageId: string, index: number): Promise<void>;
  clear(messageId: string): Promise<void>;
}

export function createFanOutProgress(redis: RedisClient, prefix: string): FanOutProgress {
  // The queue prefix keeps test runs apart and, wrapped in {braces}, keeps a Redis Cluster slot.
  const key = (messageId: string) => `${prefix}:fan-out:${messageId}`;
  const scripts = redis as MarkRedis;
  if (typeof scripts.hookfleetMarkFinished !== 'function') {
    redis.defineCommand('hookfleetMarkFinished', { lua: MARK_SCRIPT });
  }
  /** Sets the positions of each message's bitmap: an Error for a message whose part failed. */
  const markAll = async (byMessage: ReadonlyMap<string, number[]>) => {
    const keys = [...byMessage.keys()].map(key);
    const args = [...byMessage.values()].flatMap((indexes) => [indexes.length, ...indexes]);
    const answers = await scripts.hookfleetMarkFinished(keys.length, ...keys, ...args);
    return new Map(
      [...byMessage.keys()].map((messageId, i) => {
        const answer = answers[i];
        const failed = Array.isArray(answer) && answer[0] === 'error';
        return [messageId, failed ? new Error(`progress mark: ${String(answer[1])}`) : undefined];
      }),
    );
  };
  const mark = turnBatch<Mark, void>(async (marks) => {
    const byMessage = new Map<string, number[]>();
    for (const { messageId, index } of marks) {
      const indexes = byMessage.get(messageId);
      if (indexes) indexes.push(index);
      else byMessage.set(messageId, [index]);
    }
    // On a Redis Cluster each message's bitmap may live on another node: one call per message.
    const groups = redis.isCluster ? [...byMessage].map((entry) => new Map([entry])) : [byMessage];
    const written = new Map<string, Error | undefined>();
    await Promise.all(
      groups.map(async (group) => {
        try {
          for (const [messageId, error] of await markAll(group)) written.set(messageId, error);
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const messageId of group.keys()) written.set(messageId, failure);
        }
      }),
    );
    return marks.map(({ messageId }) => written.get(messageId));
  }, MAX_MARKS);
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
    mark: (messageId, index) => mark({ messageId, index }),
    async clear(messageId) {
      await redis.del(key(messageId));
    },
  };
}

/**
 * The same in one process's memory, for trial mode: a takeover happens only within the process
 * (a fan-out retried after an error), so that is where the progress has to be; after a crash the
 * fan-out runs again from the start (at-least-once, as with a bitmap that expired).
 */
export function createLocalFanOutProgress(): FanOutProgress {
  const finished = new Map<string, Set<number>>();
  return {
    finished(messageId) {
      let done = finished.get(messageId);
      if (!done) finished.set(messageId, (done = new Set()));
      const seen = new Set(done);
      return Promise.resolve((index) => seen.has(index));
    },
    mark(messageId, index) {
      finished.get(messageId)?.add(index);
      return Promise.resolve();
    },
    clear(messageId) {
      finished.delete(messageId);
      return Promise.resolve();
    },
  };
}

/** The progress store of `backend`: Redis's, shared by the fleet, or this process's memory. */
export function fanOutProgressOn(backend: QueueBackend, prefix: string): FanOutProgress {
  return backend.kind === 'redis'
    ? createFanOutProgress(backend.redis('fan-out'), prefix)
    : createLocalFanOutProgress();
}
