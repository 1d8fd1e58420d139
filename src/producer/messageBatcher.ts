/**
 * The send path's group commit (issue #5). Concurrent sends (HTTP requests, library calls) are
 * written together: per batch one INSERT of every message with its body and endpoint set, one fan-out job per
 * message in Redis pipelines of 200 sent back to back (jobs.ts addMessageJobs), and one UPDATE of `enqueued_at`;
 * instead of three round trips per send. A message whose `enqueued_at` is still null a minute
 * later was cut short between the INSERT and the enqueue (the process died, or Redis lost the
 * write), and the reconciler (worker/unqueuedMessages.ts) queues it.
 * A caller's promise resolves only when its message is in PostgreSQL AND its jobs are in Redis,
 * so a 202 still means both. See groupCommit.ts for when batches go out and what bounds them.
 */
import type { ShardedQueue } from '../queueShards.js';
import type postgres from 'postgres';
import {
  insertFannedOutMessages,
  deleteUnqueuedMessages,
  markMessagesEnqueued,
  type NewFannedOutMessage,
} from '../db/messages.js';
import { HookfleetError } from '../errors.js';
import { addMessageJobs } from '../jobs.js';
import { ownerPlaces, type OwnerShares } from '../delivery/ownerQueue.js';
import { GroupCommit } from './groupCommit.js';
import { isUnavailableError, redisUnavailable } from '../unavailable.js';

/**
 * Payload bytes that may wait for a batch by default: 10,000 sends of 6.5 KiB, or 256 sends of
 * 256 KiB. Waiting sends hold their payload twice (the JSON text and the parsed value, several
 * times its size), so this keeps the api's heap within a few hundred MiB however large the
 * payloads of a flood are.
 */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** A message to store and enqueue: its payload is the JSON text sent to receivers. */
export type PendingMessage = NewFannedOutMessage;

export interface MessageBatcherOptions {
  sql: postgres.Sql;
  queue: ShardedQueue;
  /** Where each owner's share of the queue is counted (addMessageJobs), with the share; none: not counted. */
  owners?: OwnerShares;
  /** Resolves undefined once Redis is ready (waiting a little for a reconnection), else why not. */
  whyRedisUnavailable: () => Promise<string | undefined>;
  /** Most sends waiting for a batch; past it a send fails at once with 503 `overloaded`. Default 10,000. */
  maxQueued?: number;
  /**
   * Most payload bytes (JSON) of the sends waiting for a batch; past it a send fails at once with
   * 503 `overloaded`. Default 64 MiB (HOOKFLEET_SEND_QUEUE_MAX_BYTES).
   */
  maxQueuedBytes?: number;
  /** Most messages per batch. Default 500. */
  maxBatch?: number;
  /** Longest a send waits for its batch to start, and longest a batch may take. Default 5000. */
  deadlineMs?: number;
}

/** Stores and enqueues sends in batches; the Producer's send() goes through one. */
export class MessageBatcher {
  private readonly batches: GroupCommit<PendingMessage, string[] | undefined>;

  constructor(private readonly options: MessageBatcherOptions) {
    this.batches = new GroupCommit({
      write: (messages) => this.write(messages),
      maxBatch: options.maxBatch ?? 500,
      maxQueued: options.maxQueued ?? 10_000,
      maxQueuedSize: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
      deadlineMs: options.deadlineMs ?? 5000,
      sizeOf: (message) => message.payloadJson.length,
      overloaded: (queued, queuedBytes) =>
        new HookfleetError(
          'overloaded',
          `${queued} sends (${mebibytes(queuedBytes)} MiB of payloads) are already waiting to be stored; nothing was stored. Retry later.`,
          503,
        ),
      timedOut: (message, waitedMs, written) =>
        new HookfleetError(
          'unavailable',
          written
            ? `PostgreSQL or Redis did not answer within ${waitedMs} ms; message ${message.id} may have been stored and enqueued anyway (send again with the same idempotencyKey to be sure). Retry later.`
            : `the send waited ${waitedMs} ms for PostgreSQL and Redis; nothing was stored. Retry later.`,
          503,
        ),
      closed: () => new HookfleetError('closed', 'the producer is closed', 503),
    });
  }

  /**
   * Stores the message with its fan-out and enqueues its deliveries. Resolves with the endpoint
   * ids, or undefined when the idempotency key was taken (nothing was stored or enqueued).
   */
  submit(message: PendingMessage): Promise<string[] | undefined> {
    return this.batches.submit(message);
  }

  /** Writes what is waiting, then refuses new sends. Safe to call twice. */
  close(): Promise<void> {
    return this.batches.close();
  }

  private async write(
    messages: readonly PendingMessage[],
  ): Promise<PromiseSettledResult<string[] | undefined>[]> {
    const { inserted, failed } = await this.insert(messages);
    const stored = messages.filter((message) => inserted.has(message.id));
    const storedFailure = await this.enqueue(stored, inserted);
    return messages.map((message) => {
      const insertError = failed.get(message.id);
      if (insertError !== undefined) return { status: 'rejected', reason: insertError };
      const endpointIds = inserted.get(message.id);
      if (endpointIds === undefined) return { status: 'fulfilled', value: undefined };
      if (storedFailure) return { status: 'rejected', reason: storedFailure(message.id) };
      return { status: 'fulfilled', value: endpointIds };
    });
  }

  /**
   * One INSERT for the batch. Should PostgreSQL refuse it for what one message holds rather than
   * for being unreachable, each message is inserted alone, so only the faulty one fails.
   */
  private async insert(
    messages: readonly PendingMessage[],
  ): Promise<{ inserted: Map<string, string[]>; failed: Map<string, unknown> }> {
    const failed = new Map<string, unknown>();
    try {
      return { inserted: await insertFannedOutMessages(this.options.sql, messages), failed };
    } catch (error) {
      if (messages.length === 1 || isUnavailableError(error)) throw error;
    }
    const inserted = new Map<string, string[]>();
    for (const message of messages) {
      try {
        const one = await insertFannedOutMessages(this.options.sql, [message]);
        for (const [id, endpointIds] of one) inserted.set(id, endpointIds);
      } catch (error) {
        failed.set(message.id, error);
      }
    }
    return { inserted, failed };
  }

  /**
   * Enqueues the stored messages' jobs, then marks them enqueued. Returns the error each caller
   * gets if this failed. A message whose enqueue failed is deleted unless it has an idempotency
   * key: its caller is told nothing was kept and may send it again as a new message, so the
   * reconciler must not deliver it as well. One with a key stays, for the caller's retry with the
   * key (or the reconciler) to resume under the same id.
   */
  private async enqueue(
    stored: readonly PendingMessage[],
    inserted: Map<string, string[]>,
  ): Promise<((messageId: string) => unknown) | undefined> {
    if (stored.length === 0) return undefined;
    const failure = await this.addJobs(stored, inserted);
    if (failure) {
      const keyless = new Set(
        ids(stored.filter((message) => message.idempotencyKey === undefined)),
      );
      // Best effort: should PostgreSQL be gone as well, the reconciler delivers them later, which
      // at-least-once allows.
      await deleteUnqueuedMessages(this.options.sql, [...keyless]).catch(() => {});
      return (messageId) => failure(keyless.has(messageId) ? undefined : messageId);
    }
    // The jobs are in Redis and will be delivered whatever this UPDATE does, so its failure is
    // not the callers' (a caller told "failed" might send again, a second message): the reconciler
    // marks what it missed, seeing the attempts or the job.
    await markMessagesEnqueued(this.options.sql, ids(stored)).catch(() => {});
    return undefined;
  }

  /**
   * Every fan-out job of the batch (jobs.ts); on failure, the `redis_unavailable` each caller gets,
   * naming the message when it was kept.
   */
  private async addJobs(
    stored: readonly PendingMessage[],
    inserted: Map<string, string[]>,
  ): Promise<((keptMessageId: string | undefined) => unknown) | undefined> {
    const reason = await this.options.whyRedisUnavailable();
    if (reason !== undefined) return (messageId) => redisUnavailable(reason, messageId);
    try {
      // A message with no endpoint has nothing to fan out.
      const toFanOut = stored.filter((message) => inserted.get(message.id)!.length > 0);
      const { owners } = this.options;
      await addMessageJobs(
        this.options.queue,
        ids(toFanOut),
        undefined,
        await ownerPlaces(
          owners,
          toFanOut.map((message) => message.ownerId ?? null),
        ),
      );
      return undefined;
    } catch (error) {
      // Connection lost, command timed out, Redis out of memory or read-only: all mean "not
      // enqueued, try again later". Job ids are deterministic, so a retry cannot add twice.
      const text = error instanceof Error ? error.message : String(error);
      return (messageId) => redisUnavailable(text, messageId, error);
    }
  }
}

function mebibytes(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function ids(messages: readonly PendingMessage[]): string[] {
  return messages.map((message) => message.id);
}
