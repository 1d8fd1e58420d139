/**
 * Group commit (issue #5): callers submit one item each and wait for its outcome; the items are
 * written in batches, one batch in flight at a time. An item submitted while nothing is in flight
 * is written at once (in a batch of one, or with whatever arrived in the same tick), so a lone
 * caller waits no longer than it would without batching; items that arrive while a batch is in
 * flight wait for it and go out together in the next one. No timer decides when to write.
 *
 * Bounded: at most `maxQueued` items wait, and their sizes add up to at most `maxQueuedSize` (past
 * either, submit fails at once with `overloaded`, so a flood of large items meets a clear refusal
 * rather than an out-of-memory crash), an
 * item that waited `maxWaitMs` before its batch started is refused without being written, and a
 * batch not written within `deadlineMs` fails every caller in it with `timedOut` (the write is
 * abandoned, not cancelled: it may still complete) while the next batch starts. So a caller
 * waits at most `maxWaitMs` + `deadlineMs`.
 */
import { DeadlineExceededError, withDeadline } from '../deadline.js';

export interface GroupCommitOptions<T, R> {
  /**
   * Writes a batch; resolves with one outcome per item, in order. A rejection fails every item
   * of the batch with its reason.
   */
  write: (items: readonly T[]) => Promise<PromiseSettledResult<R>[]>;
  /** The error for a submit refused because `maxQueued` items, or `queuedSize` of `maxQueuedSize`, are waiting. */
  overloaded: (queued: number, queuedSize: number) => Error;
  /**
   * The error for an item whose batch was not written within `deadlineMs` (`written`: the write
   * may still complete), or that waited `maxWaitMs` for its batch to start (never written).
   */
  timedOut: (item: T, waitedMs: number, written: boolean) => Error;
  /** The error for a submit after close(). */
  closed: () => Error;
  /** Most items in one batch. Default 500. */
  maxBatch?: number;
  /** A batch stops growing once its items' sizes add up to this (it always takes one item). Default 4 MiB. */
  maxBatchSize?: number;
  /** Size of an item for maxBatchSize, e.g. its payload's length. Default 0 (only maxBatch counts). */
  sizeOf?: (item: T) => number;
  /** Most items waiting for a batch. Default 10,000. */
  maxQueued?: number;
  /**
   * Most total size (`sizeOf`) of the items waiting for a batch; one item is always accepted when
   * none waits. Default: unbounded.
   */
  maxQueuedSize?: number;
  /** Longest a batch's write may take. Default 5000. */
  deadlineMs?: number;
  /** Longest an item waits for its batch to start. Default `deadlineMs`. */
  maxWaitMs?: number;
}

interface Entry<T, R> {
  item: T;
  size: number;
  submittedAt: number;
  resolve: (value: R) => void;
  reject: (reason: unknown) => void;
}

export class GroupCommit<T, R> {
  private queue: Entry<T, R>[] = [];
  private flushing: Promise<void> | undefined;
  private isClosed = false;
  private readonly maxBatch: number;
  private readonly maxBatchSize: number;
  private readonly maxQueued: number;
  private readonly maxQueuedSize: number;
  /** Sum of `sizeOf` over `queue`. */
  private queuedSize = 0;
  private readonly deadlineMs: number;
  private readonly maxWaitMs: number;

  constructor(private readonly options: GroupCommitOptions<T, R>) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxBatchSize = options.maxBatchSize ?? 4 * 1024 * 1024;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.maxQueuedSize = options.maxQueuedSize ?? Number.POSITIVE_INFINITY;
    this.deadlineMs = options.deadlineMs ?? 5000;
    this.maxWaitMs = options.maxWaitMs ?? this.deadlineMs;
  }

  /** Items waiting for a batch (not counting the batch in flight). */
  get queued(): number {
    return this.queue.length;
  }

  /** Resolves with the item's outcome once the batch holding it was written. */
  submit(item: T): Promise<R> {
    if (this.isClosed) return Promise.reject(this.options.closed());
    const size = this.options.sizeOf?.(item) ?? 0;
    if (
      this.queue.length >= this.maxQueued ||
      (this.queue.length > 0 && this.queuedSize + size > this.maxQueuedSize)
    ) {
      return Promise.reject(this.options.overloaded(this.queue.length, this.queuedSize));
    }
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, size, submittedAt: performance.now(), resolve, reject });
      this.queuedSize += size;
      // Started in a microtask rather than here, so items submitted in the same tick share a batch.
      this.flushing ??= Promise.resolve().then(() => this.writeAll());
    });
  }

  /** Refuses new items and resolves once every waiting item has been written (or failed). Safe to call twice. */
  async close(): Promise<void> {
    this.isClosed = true;
    while (this.flushing) await this.flushing;
  }

  private async writeAll(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.writeBatch(this.takeBatch());
    } finally {
      this.flushing = undefined;
    }
  }

  private takeBatch(): Entry<T, R>[] {
    const now = performance.now();
    const batch: Entry<T, R>[] = [];
    let size = 0;
    let taken = 0;
    for (; taken < this.queue.length && batch.length < this.maxBatch; taken++) {
      const entry = this.queue[taken]!;
      if (now - entry.submittedAt > this.maxWaitMs) {
        entry.reject(this.options.timedOut(entry.item, this.maxWaitMs, false));
        continue;
      }
      if (batch.length > 0 && size + entry.size > this.maxBatchSize) break;
      size += entry.size;
      batch.push(entry);
    }
    for (let i = 0; i < taken; i++) this.queuedSize -= this.queue[i]!.size;
    this.queue = taken === this.queue.length ? [] : this.queue.slice(taken);
    return batch;
  }

  private async writeBatch(batch: Entry<T, R>[]): Promise<void> {
    if (batch.length === 0) return;
    let outcomes: PromiseSettledResult<R>[];
    try {
      outcomes = await withDeadline(
        this.options.write(batch.map((entry) => entry.item)),
        this.deadlineMs,
        'group commit: batch not written in time',
      );
    } catch (error) {
      // At the deadline the write is abandoned, not cancelled: it may still complete.
      const timedOut = error instanceof DeadlineExceededError;
      for (const entry of batch)
        entry.reject(timedOut ? this.options.timedOut(entry.item, this.deadlineMs, true) : error);
      return;
    }
    batch.forEach((entry, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined)
        entry.reject(new Error('group commit: the write returned no outcome for this item'));
      else if (outcome.status === 'fulfilled') entry.resolve(outcome.value);
      else entry.reject(outcome.reason);
    });
  }
}
