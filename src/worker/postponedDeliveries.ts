/**
 * Sends deliveries an open circuit postponed as soon as the circuit closes (issue #7), instead of
 * when each postponement ends (up to one and a half cooldowns). A delivery that is no longer
 * delayed (already taken, postponed again, removed) is skipped.
 */
import type { DeliveryJobData } from '../jobs.js';
import type { ShardedQueue } from '../queueShards.js';
import type { Logger } from '../logger.js';

/** Deliveries promoted at once: a few dozen Redis round trips in flight. */
const PROMOTE_AT_ONCE = 50;

export interface PostponedDeliveries {
  /** Moves these delayed delivery jobs to the waiting list now; returns at once. */
  promote(jobIds: readonly string[]): void;
  /** Resolves when every promotion started so far has finished (for shutdown). */
  settled(): Promise<void>;
}

export function createPostponedDeliveries(
  queue: ShardedQueue<DeliveryJobData>,
  logger: Logger,
): PostponedDeliveries {
  const running = new Set<Promise<void>>();

  async function promoteAll(jobIds: readonly string[]): Promise<void> {
    let promoted = 0;
    for (let start = 0; start < jobIds.length; start += PROMOTE_AT_ONCE) {
      const chunk = jobIds.slice(start, start + PROMOTE_AT_ONCE);
      const done = await Promise.all(
        chunk.map(async (jobId) => {
          const job = await queue.forJobId(jobId).getJob(jobId);
          // promote() refuses a job that is not delayed: taken meanwhile, or postponed again.
          return job
            ? job.promote().then(
                () => 1,
                () => 0,
              )
            : 0;
        }),
      );
      promoted += done.reduce<number>((sum, n) => sum + n, 0);
    }
    logger.debug({ promoted, of: jobIds.length }, 'postponed deliveries sent after circuit closed');
  }

  return {
    promote(jobIds) {
      if (jobIds.length === 0) return;
      const run = promoteAll(jobIds)
        .catch((error: unknown) =>
          // They still come back when their postponement ends.
          logger.warn({ err: error }, 'could not send postponed deliveries early'),
        )
        .finally(() => running.delete(run));
      running.add(run);
    },
    async settled() {
      await Promise.all(running);
    },
  };
}
