import type { ServerResponse } from 'node:http';
import { startReceiver, type ReceivedRequest, type Receiver } from './receiver.js';

/** Answers one request; the default answers 204 (after `delayMs`, when given). */
export type Answer = (request: ReceivedRequest, res: ServerResponse) => void;

export interface DeliveryLedgerOptions {
  /** Wait before answering 204. Default 0. */
  delayMs?: number;
  /** Answers instead of the default 204. */
  answer?: Answer;
}

export interface DeliveryLedger {
  receiver: Receiver;
  /** Base URL; give each endpoint a path of its own under it (`${url}/e1`). */
  url: string;
  /** Arrival times (ms since epoch) of each delivery, keyed by `${webhook-id} ${path}`. */
  arrivals: Map<string, number[]>;
  /** Distinct deliveries received. */
  readonly unique: number;
  /** Requests received, duplicates included. */
  readonly total: number;
  /** Deliveries that arrived more than once, with their arrival times. */
  duplicates(): [key: string, arrivalsMs: number[]][];
  /** Resolves once `count` distinct deliveries have arrived. */
  waitForUnique(count: number): Promise<void>;
  close(): Promise<void>;
}

/** The `webhook-id` and path of a request: what identifies one delivery (message x endpoint). */
export function deliveryKey(request: ReceivedRequest): string {
  return `${String(request.headers['webhook-id'])} ${request.path}`;
}

/**
 * A receiver that deduplicates by `webhook-id` per endpoint path, as the Standard Webhooks spec
 * asks receivers to, and counts what arrived more than once.
 */
export async function startDeliveryLedger(
  options: DeliveryLedgerOptions = {},
): Promise<DeliveryLedger> {
  const arrivals = new Map<string, number[]>();
  const waiters: { count: number; resolve: () => void }[] = [];
  let total = 0;
  const answer: Answer =
    options.answer ??
    ((_request, res) => {
      if (options.delayMs) setTimeout(() => res.writeHead(204).end(), options.delayMs);
      else res.writeHead(204).end();
    });
  const receiver = await startReceiver((request, _index, res) => {
    total += 1;
    const key = deliveryKey(request);
    const times = arrivals.get(key);
    if (times) times.push(request.receivedAtMs);
    else arrivals.set(key, [request.receivedAtMs]);
    for (const waiter of [...waiters]) {
      if (arrivals.size >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    answer(request, res);
  });
  return {
    receiver,
    url: receiver.url.replace(/\/hook$/, ''),
    arrivals,
    get unique() {
      return arrivals.size;
    },
    get total() {
      return total;
    },
    duplicates() {
      return [...arrivals].filter(([, times]) => times.length > 1);
    },
    waitForUnique(count) {
      if (arrivals.size >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close: () => receiver.close(),
  };
}
