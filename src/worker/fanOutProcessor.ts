/**
 * The processor of the `messages` queue: one job per message, fanned out here to the message's
 * endpoints (its set fixed at acceptance), first attempt each, through the attempt step delivery
 * jobs use too (deliveryAttempt.ts).
 *
 * - Bounded: an attempt starts only once it has one of the process's attempt slots, so a message
 *   to 10,000 endpoints has at most HOOKFLEET_CONCURRENCY attempts (and promises) going at once.
 * - Follow-ups: a retry or a postponement becomes a delivery job (deliveryFollowUps.ts), ids only.
 *   A permanent failure is recorded as the delivery's 'failed' attempt, which is what
 *   `failed list` and replay read.
 * - Isolation: once everything left is attempts that have been sending for HAND_OFF_AFTER_MS,
 *   each gets a guard, a delivery job due after the delivery timeout plus a margin, and the
 *   fan-out completes. The attempt goes on (holding its slot, not the fan-out): its end removes
 *   the guard, or replaces it with the retry. The guard only runs if this worker died meanwhile.
 *   So a hanging receiver holds a fan-out for about a second, never for its timeout.
 * - Crash: each finished endpoint is marked in fanOutProgress.ts; a fan-out taken over from a
 *   killed worker skips the marked ones, so only what was in flight is sent twice.
 */
import { DelayedError, type Job } from 'bullmq';
import type { MessageLoader } from './messageLoader.js';
import type { MessageToSend } from '../db/messageBodies.js';
import { withDeadline } from '../deadline.js';
import { deliveryJobId, type MessageJobData } from '../jobs.js';
import type { Logger } from '../logger.js';
import { messageContent, type MessageContent } from '../delivery/envelope.js';
import type { AttemptSlots } from './attemptSlots.js';
import type { AttemptOutcome, DeliveryAttempt } from './deliveryAttempt.js';
import type { DeliveryEvents } from './deliveryEvents.js';
import type { DeliveryFollowUp, DeliveryFollowUps } from './deliveryFollowUps.js';
import type { FanOutProgress } from './fanOutProgress.js';

/**
 * How long a first attempt may be sending before its fan-out hands it to a guard. Receivers that
 * answer at all answer within a few hundred milliseconds (p99 33-62 ms in the latency benchmark);
 * past a second the attempt is most likely waiting out its timeout.
 */
export const HAND_OFF_AFTER_MS = 1000;

/** How much later than the delivery timeout a guard is due: time for the attempt's follow-up. */
export const GUARD_MARGIN_MS = 5000;

/** Longest wait for the message row before the fan-out is postponed (PostgreSQL unreachable). */
const MESSAGE_READ_TIMEOUT_MS = 3000;
/** How long a fan-out waits when its message cannot be read, plus up to half as much of jitter. */
const MESSAGE_READ_RETRY_MS = 2000;

export interface FanOutDeps {
  /** Reads the message's body and endpoint set (batched, messageLoader.ts). */
  loadMessage: MessageLoader;
  attempt: DeliveryAttempt;
  slots: AttemptSlots;
  followUps: DeliveryFollowUps;
  progress: FanOutProgress;
  events: DeliveryEvents;
  logger: Logger;
  retryScheduleMs: readonly number[];
  deliveryTimeoutMs: number;
  /** Default HAND_OFF_AFTER_MS. */
  handOffAfterMs?: number;
  /**
   * Gives back the message's place in its owner's share of the queue (delivery/ownerQueue.ts)
   * once its fan-out completes; called only for jobs counted there. Default: none.
   */
  leaveOwnerQueue?: (ownerId: string | null) => Promise<void>;
  /**
   * True once the worker is shutting down: a fan-out then starts no more attempts, waits for
   * those in flight, and goes back to the queue, where the next run skips what this one finished.
   */
  stopping: () => boolean;
}

/** One first attempt of the fan-out. */
interface Running {
  endpointId: string;
  index: number;
  /** Set when the request went out. */
  sendingSinceMs?: number;
  /** Set when the attempt has ended and only its follow-up is left (never handed off then). */
  ended?: boolean;
  /** Whether the fan-out keeps a progress bitmap (more than one endpoint). */
  tracked: boolean;
  /** Set once a guard job is being added: the attempt's end waits for it, then removes it. */
  guard?: Promise<void>;
  /** Settles when the attempt and its follow-up are done. */
  done?: Promise<void>;
}

export interface FanOutProcessor {
  (job: Job<MessageJobData>, token?: string): Promise<FanOutResult>;
  /** Resolves when every handed-off attempt has ended (for shutdown; each is bounded by the timeout). */
  settled(): Promise<void>;
}

export interface FanOutResult {
  endpoints: number;
  /** Finished by an earlier run of this job (a worker killed mid-fan-out). */
  skipped: number;
  /** Still sending when the fan-out completed: guarded by a delivery job. */
  handedOff: number;
}

/**
 * Where a message's fan-out starts in its endpoint set, from its id. Fan-outs of a broadcast run
 * side by side over the same endpoints in the same order; started at one place they would all
 * ask the same endpoint at once, its in-flight limit would postpone most of them into delivery
 * jobs, and the next endpoint would sit idle. Spread over the set, each endpoint sees about one
 * fan-out at a time.
 */
export function startIndex(messageId: string, count: number): number {
  let hash = 0;
  for (let i = 0; i < messageId.length; i++) hash = (hash * 31 + messageId.charCodeAt(i)) >>> 0;
  return count === 0 ? 0 : hash % count;
}

export function createFanOutProcessor(deps: FanOutDeps): FanOutProcessor {
  const handOffAfterMs = deps.handOffAfterMs ?? HAND_OFF_AFTER_MS;
  const detached = new Set<Promise<void>>();

  /** What the outcome leaves to do, done; then the endpoint is marked finished unless its guard was. */
  async function followUp(
    job: Job<MessageJobData>,
    running: Running,
    outcome: AttemptOutcome,
  ): Promise<void> {
    const { messageId, enqueuedAtMs } = job.data;
    const { endpointId } = running;
    let next: DeliveryFollowUp | undefined;
    if (outcome.kind === 'postponed' || outcome.kind === 'retry') {
      const retry = outcome.kind === 'retry';
      next = {
        messageId,
        endpointId,
        attemptsBefore: retry ? 1 : 0,
        enqueuedAtMs,
        // For a retry, the attempt worked the delay out from the endpoint's schedule.
        delayMs: outcome.delayMs,
      };
    }
    if (running.guard) {
      await running.guard;
      // False: the guard is running (this attempt outlived timeout and margin) and carries on.
      if (!(await deps.followUps.replace(messageId, endpointId, next))) return;
    } else if (next) {
      await deps.followUps.add(next);
    }
    if (outcome.kind === 'succeeded') await deps.events.ended(messageId, endpointId);
    if (outcome.kind === 'failed') await deps.events.ended(messageId, endpointId, outcome.reason);
    if (!running.guard && running.tracked) await deps.progress.mark(messageId, running.index);
  }

  function start(
    job: Job<MessageJobData>,
    content: MessageContent,
    running: Running,
    slot: () => void,
  ) {
    const { messageId, enqueuedAtMs } = job.data;
    running.done = deps
      .attempt({
        messageId,
        endpointId: running.endpointId,
        content,
        attemptNumber: 1,
        jobId: deliveryJobId(messageId, running.endpointId),
        enqueuedAtMs,
        canPostpone: true,
        // Held until the follow-up is written, released below: what a crash or an outage can
        // leave unfinished stays within the slots.
        slot: () => {},
        onSending: () => {
          running.sendingSinceMs = Date.now();
        },
      })
      .catch((error: unknown): AttemptOutcome => {
        // A bug, not a receiver's doing: the delivery is tried again later by a job of its own.
        deps.logger.error(
          { err: error, messageId, endpointId: running.endpointId },
          'attempt failed',
        );
        return { kind: 'postponed', delayMs: deps.retryScheduleMs[0] ?? 5000, reason: 'error' };
      })
      .then((outcome) => {
        running.ended = true;
        return followUp(job, running, outcome);
      })
      .finally(slot);
  }

  /** Guards each attempt still running and lets it finish on its own. */
  async function handOff(job: Job<MessageJobData>, running: readonly Running[]): Promise<void> {
    const { messageId, enqueuedAtMs } = job.data;
    await Promise.all(
      running.map(async (attempt) => {
        attempt.guard = deps.followUps.add({
          messageId,
          endpointId: attempt.endpointId,
          attemptsBefore: 0,
          enqueuedAtMs,
          delayMs: deps.deliveryTimeoutMs + GUARD_MARGIN_MS,
        });
        await attempt.guard;
        if (attempt.tracked) await deps.progress.mark(messageId, attempt.index);
        const rest = attempt.done!.catch((error: unknown) =>
          deps.logger.warn({ err: error, messageId }, 'follow-up of a handed-off attempt failed'),
        );
        detached.add(rest);
        void rest.finally(() => detached.delete(rest));
      }),
    );
  }

  /** Waits for the attempts to end, or for only long-sending ones to be left, which it hands off. */
  async function finish(job: Job<MessageJobData>, pending: Map<number, Running>): Promise<number> {
    while (pending.size > 0) {
      const nowMs = Date.now();
      let waitMs = 0;
      for (const running of pending.values()) {
        const sentForMs =
          running.sendingSinceMs === undefined || running.ended === true
            ? 0
            : nowMs - running.sendingSinceMs;
        waitMs = Math.max(waitMs, handOffAfterMs - sentForMs);
      }
      if (waitMs <= 0) {
        const left = [...pending.values()];
        await handOff(job, left);
        return left.length;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ...[...pending.values()].map((running) => running.done!.catch(() => {})),
        new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
      ]);
      clearTimeout(timer);
    }
    return 0;
  }

  /**
   * The message row; when PostgreSQL cannot be reached the fan-out is postponed, like a delivery
   * whose endpoint cannot be read: nothing was sent, so no attempt of the job is used (a failed
   * job would back off exponentially, for many minutes after a long outage).
   */
  async function readMessage(
    job: Job<MessageJobData>,
    token: string | undefined,
  ): Promise<MessageToSend | undefined> {
    try {
      return await withDeadline(
        deps.loadMessage(job.data.messageId),
        MESSAGE_READ_TIMEOUT_MS,
        `message read took over ${MESSAGE_READ_TIMEOUT_MS} ms`,
      );
    } catch (error) {
      if (token === undefined) throw error;
      const delayMs = Math.round(MESSAGE_READ_RETRY_MS * (1 + Math.random() / 2));
      deps.logger.warn(
        { err: error, messageId: job.data.messageId, delayMs },
        'message read failed; fan-out postponed',
      );
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError(`message read failed; fan-out postponed by ${delayMs} ms`);
    }
  }

  /** Best effort: a count left too high only lowers the owner's priority until its key expires. */
  async function leaveOwnerQueue(job: Job<MessageJobData>): Promise<void> {
    const { ownerId } = job.data;
    if (ownerId === undefined || !deps.leaveOwnerQueue) return;
    await deps
      .leaveOwnerQueue(ownerId)
      .catch((error: unknown) =>
        deps.logger.warn(
          { err: error, ownerId },
          "could not give back an owner's place in the queue",
        ),
      );
  }

  async function processFanOut(job: Job<MessageJobData>, token?: string): Promise<FanOutResult> {
    const { messageId } = job.data;
    const message = await readMessage(job, token);
    // Gone: deleted by its retention before it was fanned out (a queue stopped for days).
    if (!message) {
      await leaveOwnerQueue(job);
      return { endpoints: 0, skipped: 0, handedOff: 0 };
    }
    // One content for every endpoint of the message: its envelope is built once.
    const content = messageContent(message.body, message.envelope);
    // With one endpoint there is nothing a re-run could skip: no bitmap (three Redis calls saved).
    const tracked = message.endpointIds.length > 1;
    const finished = tracked ? await deps.progress.finished(messageId) : () => false;
    const pending = new Map<number, Running>();
    let skipped = 0;
    let failure: Error | undefined;
    let stopped = false;
    const count = message.endpointIds.length;
    const first = startIndex(messageId, count);
    for (let step = 0; step < count; step++) {
      const index = (first + step) % count;
      const endpointId = message.endpointIds[index]!;
      if (finished(index)) {
        skipped += 1;
        continue;
      }
      const slot = await deps.slots.acquire();
      if (deps.stopping() && token !== undefined) {
        slot();
        stopped = true;
        break;
      }
      const running: Running = { endpointId, index, tracked };
      pending.set(index, running);
      start(job, content, running, slot);
      void running.done!.then(
        () => pending.delete(index),
        (error: unknown) => {
          // Its follow-up could not be written (Redis unreachable): the job fails once the
          // others are done, and its next run makes this attempt again.
          failure ??= error instanceof Error ? error : new Error(String(error));
          pending.delete(index);
        },
      );
    }
    const handedOff = await finish(job, pending);
    if (failure !== undefined) throw failure;
    if (stopped) {
      // Back to the queue, not an attempt of the job; the progress bitmap stays for the next run.
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError(
        'worker shutting down: the rest of the fan-out goes back to the queue',
      );
    }
    if (tracked) await deps.progress.clear(messageId);
    await leaveOwnerQueue(job);
    return { endpoints: message.endpointIds.length, skipped, handedOff };
  }

  return Object.assign(processFanOut, {
    async settled() {
      while (detached.size > 0) await Promise.all(detached);
    },
  });
}
