/**
 * Replays every delivery to one endpoint that failed since a time: Svix's "recover" (issue #8),
 * behind `hookfleet failed replay`, `POST /v1/endpoints/:id/recover` and the endpoint health page.
 */
import type { ShardedQueue } from '../queueShards.js';
import type { Database } from '../db/client.js';
import {
  countFailedDeliveries,
  listFailedDeliveryPage,
  type FailedDelivery,
  type FailedDeliveryCursor,
} from '../db/failedDeliveries.js';
import { findMessagesByIds } from '../db/messages.js';
import type { DeliveryJobData } from '../jobs.js';
import { redeliverMessage } from './redeliver.js';

export interface ReplayFailedDeps {
  db: Database;
  queue: ShardedQueue<DeliveryJobData>;
}

export interface ReplayFailedOptions {
  endpointId: string;
  /** Deliveries whose final attempt was at or after this time are replayed. */
  since: Date;
  /**
   * Called after each page with the deliveries handled so far and the number expected (counted
   * at the start; raised if more turn up meanwhile).
   */
  onProgress?: (done: number, total: number) => void;
  /** Failed deliveries read (and message rows fetched) per round. Default 500. */
  pageSize?: number;
}

export interface ReplayFailedResult {
  /** Failed deliveries found. */
  total: number;
  /** Jobs taken back out of the failed set (they get the whole retry schedule again). */
  retried: number;
  /** New jobs added because the old one was gone (removed by its retention) or had completed. */
  enqueued: number;
  /** Still queued (replayed by someone else meanwhile, e.g. from Bull Board): left alone. */
  pending: number;
}

export const DEFAULT_REPLAY_PAGE_SIZE = 500;
/** Messages redelivered at once: a few dozen Redis round trips in flight, as redeliverMessage does. */
const MESSAGES_AT_ONCE = 50;

/**
 * Sends the endpoint's failed deliveries since `since` again, newest failure first, a page at a
 * time: each page's message rows are fetched in one query and each delivery goes through
 * redeliverMessage (failed job retried in place, else a new job with the same body and
 * webhook-id). Paging follows a cursor rather than re-reading the first page, because a replayed
 * delivery stays listed as failed until a worker makes its next attempt. Deliveries whose
 * message row is gone are counted in `total` only. Failures recorded after the first page was
 * read are not replayed, so a replayed delivery that fails again is not replayed twice. A second
 * run leaves alone (`pending`) what the first one retried or enqueued while it waits: a new job is
 * named after the failure it replays, so it is not added twice.
 */
export async function replayFailedDeliveries(
  deps: ReplayFailedDeps,
  options: ReplayFailedOptions,
): Promise<ReplayFailedResult> {
  const { endpointId, since, onProgress } = options;
  const pageSize = options.pageSize ?? DEFAULT_REPLAY_PAGE_SIZE;
  let expected = onProgress ? await countFailedDeliveries(deps.db, { endpointId, since }) : 0;
  const result: ReplayFailedResult = { total: 0, retried: 0, enqueued: 0, pending: 0 };
  onProgress?.(0, expected);
  let after: FailedDeliveryCursor | undefined;
  do {
    const page = await listFailedDeliveryPage(deps.db, {
      endpointId,
      since,
      limit: pageSize,
      after,
    });
    await replayPage(deps, page.deliveries, result);
    result.total += page.deliveries.length;
    expected = Math.max(expected, result.total);
    if (page.deliveries.length > 0) onProgress?.(result.total, expected);
    after = page.next;
  } while (after);
  return result;
}

async function replayPage(
  deps: ReplayFailedDeps,
  page: readonly FailedDelivery[],
  result: ReplayFailedResult,
): Promise<void> {
  const messages = await findMessagesByIds(
    deps.db,
    page.map((delivery) => delivery.messageId),
  );
  const endpointsByMessage = new Map<string, string[]>();
  const failedAt = new Map<string, Date>();
  for (const { messageId, endpointId, failedAt: at } of page) {
    failedAt.set(`${messageId} ${endpointId}`, at);
    if (!messages.has(messageId)) continue;
    const list = endpointsByMessage.get(messageId) ?? [];
    list.push(endpointId);
    endpointsByMessage.set(messageId, list);
  }
  const groups = [...endpointsByMessage];
  for (let start = 0; start < groups.length; start += MESSAGES_AT_ONCE) {
    const chunk = groups.slice(start, start + MESSAGES_AT_ONCE);
    const redeliveries = await Promise.all(
      chunk.map(([messageId, endpointIds]) =>
        redeliverMessage(deps.queue.forMessage(messageId), messages.get(messageId)!, endpointIds, {
          // Named after the failure it replays: the same failure is never enqueued twice.
          redeliveryKey: (endpointId) =>
            `f${failedAt.get(`${messageId} ${endpointId}`)!.getTime().toString(36)}`,
        }),
      ),
    );
    for (const { action } of redeliveries.flat()) result[action] += 1;
  }
}
