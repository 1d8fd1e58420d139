import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { endpointChangeTriggersInPlace, notifyChannel } from '../db/endpointNotifications.js';
import { withDeadline } from '../deadline.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/** The channel drizzle/0003_endpoint_change_notify.sql notifies, with the endpoint id as payload. */
export const ENDPOINT_CHANGES_CHANNEL = 'hookfleet_endpoint_changed';

/**
 * Pings sent (PostgreSQL answering) but not heard back before the LISTEN is opened again; doubled
 * after each reopening that did not help (behind PgBouncer in transaction pooling, say, where no
 * LISTEN ever hears anything), up to the maximum, so the log is not flooded.
 */
const UNANSWERED_PINGS_BEFORE_RESUBSCRIBE = 3;
const MAX_UNANSWERED_PINGS_BEFORE_RESUBSCRIBE = 3 * 64;
/** How often a worker looks again for change triggers it found missing. */
const MISSING_TRIGGERS_RECHECK_MS = 30_000;
/** Pings whose answer is still awaited; past it the oldest are forgotten. */
const MAX_PENDING_PINGS = 32;

export interface EndpointChanges {
  /** Calls `listener` with the id of every endpoint changed or deleted, as the notification arrives. */
  onChange(listener: (endpointId: string) => void): void;
  /**
   * A moment T such that every endpoint change committed before T has been passed to the
   * listeners, valid for a row read at `readAtMs`. Undefined when there is no such moment: not
   * listening, or the row was read before the current LISTEN began (a change in between may have
   * been missed), or no ping has come back since.
   */
  confirmedFor(readAtMs: number): number | undefined;
  /** Says confirmations are wanted; the feed pings only while they are, so an idle worker sends nothing. */
  wanted(): void;
  /**
   * Sends a ping and resolves true once it came back through the LISTEN connection, false if it
   * could not be sent or did not come back within `pingAnswerMs`. Runs by itself every `pingMs`
   * while wanted; tests call it to confirm at a moment of their choosing.
   */
  ping(): Promise<boolean>;
  /** Resolves once the LISTEN is in place, or the feed is closed (tests wait on it; never rejects). */
  listening(): Promise<void>;
  close(): Promise<void>;
}

export interface EndpointChangesOptions {
  /** Connection string for the LISTEN connection, which is this feed's own. */
  databaseUrl: string;
  /** The pool pings are sent through (any connection will do: NOTIFY reaches every listener). */
  sql: postgres.Sql;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Interval between pings while confirmations are wanted. */
  pingMs: number;
  /** How long a ping may take to come back before it counts as unanswered. Default 2000. */
  pingAnswerMs?: number;
  /** Wait before trying again when LISTEN fails. Default 5000. */
  retryMs?: number;
  now?: () => number;
}

/**
 * Endpoint changes as PostgreSQL announces them (NOTIFY, sent at commit, in commit order), so
 * workers can trust a cached endpoint row until told otherwise instead of re-reading it every
 * few seconds: with many endpoints, each worker re-read nearly one row per delivery.
 *
 * A notification can be lost without an error: between a dropped LISTEN connection and the
 * next LISTEN, or on a connection that went silent. So the feed vouches only for what it has
 * proved: it regularly NOTIFYs a channel of its own and, when that comes back on the LISTEN
 * connection, every change committed before the ping was sent has come back before it. A row is
 * then known current as of that ping (`confirmedFor`), and the cache's usual bound
 * (HOOKFLEET_ENDPOINT_CACHE_MS) counts from there. Without answers, rows fall back to that bound.
 */
export function createEndpointChanges(options: EndpointChangesOptions): EndpointChanges {
  const { logger, pingMs } = options;
  const now = options.now ?? Date.now;
  const retryMs = options.retryMs ?? 5000;
  const pingAnswerMs = options.pingAnswerMs ?? 2000;
  // Its own channel, so a fleet's pings are not fanned out to every worker.
  const pingChannel = `hookfleet_ping_${randomBytes(8).toString('hex')}`;
  const listeners: ((endpointId: string) => void)[] = [];
  const pending = new Map<number, { sentAtMs: number; answered: (ok: boolean) => void }>();
  let client: postgres.Sql | undefined;
  let listeningSinceMs: number | undefined;
  let confirmedAtMs: number | undefined;
  let pingSeq = 0;
  let pinging = false;
  let unanswered = 0;
  let resubscribeAfter = UNANSWERED_PINGS_BEFORE_RESUBSCRIBE;
  let isWanted = false;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let listeningWaiters: (() => void)[] = [];
  /** Both channels LISTENed on `client`. */
  let subscribed = false;

  /** Each LISTEN (first, or again after postgres.js reconnected) starts a new unbroken stretch. */
  function onListen() {
    listeningSinceMs = now();
    confirmedAtMs = undefined;
    unanswered = 0;
  }

  function onPong(payload: string) {
    const seq = Number(payload);
    const ping = pending.get(seq);
    if (!ping) return;
    // Notifications arrive in order, so older pings still waiting were lost with a connection.
    for (const [older, { answered }] of pending) {
      if (older > seq) break;
      pending.delete(older);
      answered(older === seq);
    }
    if (listeningSinceMs !== undefined && ping.sentAtMs >= listeningSinceMs) {
      confirmedAtMs = Math.max(confirmedAtMs ?? ping.sentAtMs, ping.sentAtMs);
    }
  }

  function forgetListening() {
    options.metrics?.endpointChangesHeard.set(0);
    subscribed = false;
    listeningSinceMs = undefined;
    confirmedAtMs = undefined;
    unanswered = 0;
    for (const { answered } of pending.values()) answered(false);
    pending.clear();
  }

  function retryLater(afterMs: number) {
    if (closed) return;
    retryTimer = setTimeout(() => void subscribe(), afterMs);
    retryTimer.unref();
  }

  async function subscribe(): Promise<void> {
    if (closed) return;
    let triggers: boolean;
    try {
      triggers = await withDeadline(
        endpointChangeTriggersInPlace(options.sql),
        retryMs,
        'no answer from PostgreSQL',
      );
    } catch (error) {
      cannotListen(error);
      return;
    }
    if (closed) return;
    // A worker started before `hookfleet migrate` (a rolling deploy) would otherwise hear no
    // change at all while its pings vouched for every row.
    if (!triggers) {
      logger.warn(
        { recheckMs: MISSING_TRIGGERS_RECHECK_MS },
        "the endpoints table's change triggers are missing or disabled (run hookfleet migrate); cached endpoint rows are re-read every HOOKFLEET_ENDPOINT_CACHE_MS meanwhile",
      );
      retryLater(MISSING_TRIGGERS_RECHECK_MS);
      return;
    }
    const own = postgres(options.databaseUrl, { max: 1, onnotice: () => {} });
    client = own;
    try {
      await own.listen(
        ENDPOINT_CHANGES_CHANNEL,
        (endpointId) => {
          for (const listener of listeners) listener(endpointId);
        },
        onListen,
      );
      await own.listen(pingChannel, onPong, onListen);
      if (client !== own) return;
      subscribed = true;
      for (const resolve of listeningWaiters) resolve();
      listeningWaiters = [];
    } catch (error) {
      if (client !== own) return;
      client = undefined;
      forgetListening();
      void own.end({ timeout: 0 }).catch(() => {});
      cannotListen(error);
    }
  }

  function cannotListen(error: unknown) {
    if (closed) return;
    logger.warn(
      { err: error, retryMs },
      'cannot LISTEN for endpoint changes; cached endpoint rows are re-read every HOOKFLEET_ENDPOINT_CACHE_MS meanwhile',
    );
    retryLater(retryMs);
  }

  /** postgres.js listens again by itself after a reconnection, but gives up silently if that fails. */
  function resubscribe() {
    logger.warn(
      { unanswered },
      'endpoint change notifications stopped arriving; opening the LISTEN connection again',
    );
    const old = client;
    client = undefined;
    forgetListening();
    void old?.end({ timeout: 0 }).catch(() => {});
    void subscribe();
  }

  async function ping(): Promise<boolean> {
    if (!subscribed || listeningSinceMs === undefined) return false;
    const seq = ++pingSeq;
    // Taken before sending: our NOTIFY commits after this, so every change committed before it
    // is delivered ahead of the ping.
    const sentAtMs = now();
    const answer = new Promise<boolean>((resolve) =>
      pending.set(seq, { sentAtMs, answered: resolve }),
    );
    if (pending.size > MAX_PENDING_PINGS) {
      const [oldest, { answered }] = pending.entries().next().value!;
      pending.delete(oldest);
      answered(false);
    }
    try {
      await withDeadline(
        notifyChannel(options.sql, pingChannel, String(seq)),
        pingAnswerMs,
        'ping not sent in time',
      );
    } catch {
      // PostgreSQL unreachable: that says nothing about the LISTEN, and rows fall back to the
      // cache's bound anyway.
      pending.delete(seq);
      return false;
    }
    // A late answer still confirms (onPong); only this wait ends.
    const ok = await withDeadline(answer, pingAnswerMs, 'ping unanswered').catch(() => false);
    options.metrics?.endpointChangesHeard.set(ok ? 1 : 0);
    if (ok) {
      unanswered = 0;
      resubscribeAfter = UNANSWERED_PINGS_BEFORE_RESUBSCRIBE;
    } else if (++unanswered >= resubscribeAfter && !closed) {
      resubscribeAfter = Math.min(resubscribeAfter * 2, MAX_UNANSWERED_PINGS_BEFORE_RESUBSCRIBE);
      resubscribe();
    }
    return ok;
  }

  const pingTimer = setInterval(() => {
    if (!isWanted || pinging || closed) return;
    isWanted = false;
    pinging = true;
    void ping().finally(() => {
      pinging = false;
    });
  }, pingMs);
  pingTimer.unref();

  void subscribe();

  return {
    onChange(listener) {
      listeners.push(listener);
    },
    confirmedFor(readAtMs) {
      if (listeningSinceMs === undefined || readAtMs < listeningSinceMs) return undefined;
      return confirmedAtMs;
    },
    wanted() {
      isWanted = true;
    },
    ping,
    listening() {
      if (subscribed || closed) return Promise.resolve();
      return new Promise((resolve) => listeningWaiters.push(resolve));
    },
    async close() {
      closed = true;
      clearInterval(pingTimer);
      clearTimeout(retryTimer);
      const own = client;
      client = undefined;
      forgetListening();
      for (const resolve of listeningWaiters) resolve();
      listeningWaiters = [];
      await own?.end({ timeout: 1 }).catch(() => {});
    },
  };
}
