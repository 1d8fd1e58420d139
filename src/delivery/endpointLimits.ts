/**
 * Per-endpoint limits shared by every worker process through Redis: a cap on the
 * deliveries in flight to one endpoint, and a circuit breaker that stops sending to an endpoint
 * after repeated failures. Together they keep a sick receiver (one that hangs until the timeout,
 * or answers 5xx) from occupying the fleet's worker slots, which would otherwise starve every
 * healthy endpoint. BullMQ's open-source edition has no per-group limits, so this is ours.
 *
 * In-flight limit: adaptive, like TCP's slow start. An endpoint starts at one delivery in flight,
 * doubles it with each success up to `maxInFlight`, and halves it on each failure. A receiver that
 * hangs from the start therefore holds one worker slot, not `maxInFlight` of them, until its
 * first timeout tells us; a healthy one reaches the full limit within a handful of successes.
 *
 * Postponement: a delivery refused because the endpoint is busy (or over its requests-per-second
 * limit) is given the next place in the endpoint's queue of postponed deliveries, one expected
 * drain interval after the last (see endpointLimitsAdmit.lua), so a backlog of 100,000 deliveries
 * to a slow endpoint comes back about once each, at the pace the endpoint takes them, instead of
 * every delivery asking again every attempt's duration and keeping the workers and Redis busy.
 *
 * Requests-per-second limit: an endpoint may set one (`rate_limit_per_second`); checked in the
 * same script as the in-flight limit, fleet-wide.
 *
 * Keys: every key of one endpoint carries the endpoint id as its hash tag (`{ep_…}`), so each
 * script touches one Redis Cluster slot, and endpoints spread over the cluster.
 *
 * Circuit states, per endpoint:
 * - closed: deliveries go out; `failureThreshold` failed attempts in a row (fleet-wide) open it.
 * - open: nothing is sent until `retryAt`; deliveries are postponed, not failed.
 * - half-open: the first delivery after `retryAt` is sent as the probe; the others keep waiting.
 *   The probe's success closes the circuit; its failure opens it again for twice as long (up to
 *   MAX_COOLDOWN_MS). A probe whose worker died is replaced once its lease runs out.
 *
 * Each admission and each release is one Lua script (atomic; a success on a healthy endpoint
 * writes nothing), and a worker sends each turn's admissions as one call, and its releases as
 * another (turnBatch.ts): with 50 attempts in flight, a few round trips a turn instead of two per
 * delivery. When Redis does not answer, deliveries are admitted without
 * limits: the limits protect the fleet's capacity and must not become a reason to stop delivering.
 *
 * Kept places: a place admitted while the endpoint is healthy (circuit closed, no failure counted,
 * in-flight limit at its top, no rate limit) is not given back after a success but kept by the
 * worker for the endpoint's next delivery, which then goes out without asking Redis. The place
 * stays in the in-flight set, so the fleet-wide cap holds; it is given back once idle for
 * PLACE_LINGER_MS, or when its lease could no longer cover a whole attempt (`placeReuseMs`), or
 * when a delivery to the endpoint fails (the failure goes to Redis at once, as always). Asking
 * Redis twice per delivery was a third of a broadcast worker's CPU. What it costs: a failure seen
 * by one worker reaches the places another worker keeps only when those are given back, so a
 * worker may send for up to `placeReuseMs` to an endpoint whose circuit another worker opened.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../redis.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { turnBatch } from '../turnBatch.js';

export interface EndpointLimitsOptions {
  /** Where the fleet's limits live; or `store`, e.g. one process's memory (localEndpointLimits.ts). */
  redis?: RedisClient;
  store?: LimitsStore;
  /** The queue prefix (HOOKFLEET_QUEUE_PREFIX), so a `{hash-tag}` keeps these keys in its slot. */
  prefix: string;
  /** Most deliveries in flight to one endpoint across the fleet (the adaptive limit's top); 0 means no cap. */
  maxInFlight: number;
  /** Failed attempts in a row that open an endpoint's circuit; 0 turns the breaker off. */
  failureThreshold: number;
  /** How long a circuit first stays open; doubled after each failed probe. */
  cooldownMs: number;
  /** How long an admitted delivery may hold its place: the delivery timeout plus a margin. */
  leaseMs: number;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Milliseconds since the epoch; tests move it instead of waiting. Default Date.now. */
  now?: () => number;
  /**
   * How long after its admission a place may carry further deliveries to its endpoint from this
   * process without asking the store (see "Kept places" above); 0 gives each place back after its
   * delivery. The lease must still cover a whole attempt: at most `leaseMs` minus the delivery
   * timeout. Default 0.
   */
  placeReuseMs?: number;
  /**
   * Called when an endpoint's circuit closes, with the deliveries its open circuit postponed
   * (at most MAX_PROMOTED_ON_CLOSE), so the worker can send them now instead of when their
   * postponement ends (up to one and a half cooldowns, 7.5 min at the longest). Default: none.
   */
  onCircuitClosed?: (endpointId: string, postponedJobIds: string[]) => void;
}

export type CircuitStateName = 'closed' | 'open' | 'half-open';

export interface CircuitState {
  state: CircuitStateName;
  /** While open: when the next probe may go out. */
  retryAt?: Date;
}

/** Reads the circuit state of endpoints (the health page and the API take one of these). */
export type CircuitStates = (
  endpointIds: readonly string[],
) => Promise<ReadonlyMap<string, CircuitState>>;

/** The answer to "may this delivery go out now?". */
export type Admission =
  | { admitted: true; permit: Permit }
  | {
      admitted: false;
      reason: 'circuit_open' | 'endpoint_busy' | 'rate_limited';
      retryInMs: number;
    };

/** Held by an admitted delivery until `release`. */
export interface Permit {
  endpointId: string;
  /** Undefined when the delivery was admitted without asking Redis (limits off or unreachable). */
  token: string | undefined;
  /** When the store admitted the place (a kept place carries later deliveries within its lease). */
  admittedAtMs?: number;
  /**
   * When this delivery took it: the attempt's duration tells later deliveries how long to wait
   * when busy.
   */
  takenAtMs?: number;
  /** The store found the endpoint healthy: after a success the place may be kept. */
  keepable?: boolean;
}

/** What the attempt says about the endpoint's health; `none` when nothing reached it. */
export type AttemptVerdict = 'succeeded' | 'failed' | 'none';

export interface EndpointLimits {
  /**
   * `jobId` names the delivery, so one postponed by an open circuit can be sent as soon as it
   * closes; `ratePerSecond` is the endpoint's requests-per-second limit (none: undefined or 0).
   */
  admit(endpointId: string, jobId?: string, ratePerSecond?: number | null): Promise<Admission>;
  release(permit: Permit, verdict: AttemptVerdict): Promise<void>;
  /** Circuit state of each endpoint, for the health page and the API. */
  circuitStates: CircuitStates;
  /** Gives back the places kept for later deliveries (at shutdown, after the last attempt). */
  close(): Promise<void>;
}

/** The longest a circuit stays open between probes, however often they fail. */
export const MAX_COOLDOWN_MS = 5 * 60_000;
/**
 * Places in an endpoint's queue of postponed deliveries are this far apart before any attempt
 * duration is known; and no delivery is asked to come back sooner than MIN_BUSY_WAIT_MS.
 */
const BUSY_SPACING_MS = 50;
const MIN_BUSY_WAIT_MS = 10;
/**
 * No place is handed out further ahead than this: deliveries beyond come back within 10 to 15 min
 * and ask again, so a wrong estimate of the drain time (an endpoint that got faster) costs at most
 * that wait, and a backlog too long for it costs one refusal per delivery per 10 minutes (100,000
 * deliveries: about 170 a second, against tens of thousands when each came back every 1.5
 * attempt durations).
 */
export const MAX_BUSY_WAIT_MS = 10 * 60_000;
/**
 * How long a kept place waits for its endpoint's next delivery before it is given back: long enough
 * to carry a broadcast's deliveries to the endpoint (fan-outs side by side reach it every few
 * milliseconds), short enough that places a worker no longer needs return to the fleet quickly.
 */
export const PLACE_LINGER_MS = 200;
/** While a probe is in flight, the other deliveries ask again after about this long. */
const PROBE_WAIT_MS = 1000;
/** State keys outlive their last change by this much, so forgotten endpoints leave nothing. */
const STATE_KEY_TTL_MS = 24 * 3600_000;
/** Most postponed deliveries handed back at once when a circuit closes. */
export const MAX_PROMOTED_ON_CLOSE = 10_000;
/** At most one warning per this interval when Redis does not answer. */
const WARNING_INTERVAL_MS = 10_000;

/**
 * The admission and release scripts, each with its KEYS, ARGV and result described at its top.
 * They live in .lua files beside this one (as BullMQ keeps its commands), so they read and diff
 * as Lua; read once, at module load. `npm run build` copies them next to the compiled file.
 */
const ADMIT_SCRIPT = readLua('endpointLimitsAdmit.lua');
const RELEASE_SCRIPT = readLua('endpointLimitsRelease.lua');

function readLua(name: string): string {
  return readFileSync(new URL(`./${name}`, import.meta.url), 'utf8');
}

/**
 * The keys of one endpoint's limits: `{id}` is the hash tag (Redis Cluster hashes only what is
 * between the first braces), so the scripts, which take three of them, touch a single slot.
 */
export function endpointLimitsKey(
  prefix: string,
  endpointId: string,
  what: 'limits' | 'in-flight' | 'postponed' | 'sending',
): string {
  return `${prefix}:endpoint:{${endpointId}}:${what}`;
}

/** The hash holding an endpoint's circuit state, in-flight limit and postponement queue. */
export function endpointStateKey(prefix: string, endpointId: string): string {
  return endpointLimitsKey(prefix, endpointId, 'limits');
}

/**
 * The sorted set of an endpoint's places in flight (member: the place's token, score: its lease
 * end): what the in-flight limit counts, fleet-wide.
 */
function inFlightKey(prefix: string, endpointId: string): string {
  return endpointLimitsKey(prefix, endpointId, 'in-flight');
}

/**
 * Circuit state of each endpoint as every worker sees it; for the health page and the API, which
 * run no worker. `redis` is any connection to the fleet's Redis; the fleet's queue prefix.
 */
export async function readCircuitStates(
  redis: RedisClient,
  prefix: string,
  endpointIds: readonly string[],
  nowMs = Date.now(),
): Promise<ReadonlyMap<string, CircuitState>> {
  const states = new Map<string, CircuitState>();
  if (endpointIds.length === 0) return states;
  const pipeline = redis.pipeline();
  for (const id of endpointIds) pipeline.hmget(endpointStateKey(prefix, id), 'state', 'retryAt');
  const replies = (await pipeline.exec()) ?? [];
  endpointIds.forEach((id, index) => {
    const [error, fields] = replies[index] ?? [];
    if (error) throw error;
    const [state, retryAt] = (fields as (string | null)[] | undefined) ?? [];
    if (state === 'open') {
      const retryAtMs = Number(retryAt);
      // Past its cooldown, the next delivery is sent as the probe.
      states.set(id, {
        state: retryAtMs > nowMs ? 'open' : 'half-open',
        retryAt: new Date(retryAtMs),
      });
    } else {
      states.set(id, { state: state === 'half-open' ? 'half-open' : 'closed' });
    }
  });
  return states;
}

/**
 * Where the limits' state lives and how its two atomic steps run. `admit` and `release` take the
 * KEYS and ARGV of the .lua scripts and answer as they do; `read` answers circuitStates.
 */
export interface LimitsStore {
  admit(keys: LimitKeys, args: (string | number)[]): Promise<[string, number, number?]>;
  release(keys: LimitKeys, args: (string | number)[]): Promise<string[]>;
  read(endpointIds: readonly string[], nowMs: number): Promise<ReadonlyMap<string, CircuitState>>;
}

/** An endpoint's state hash, its in-flight sorted set and its set of postponed deliveries. */
export type LimitKeys = readonly [state: string, inFlight: string, postponed: string];

/** Most deliveries one call of a limits script carries (the worker's slots bound a turn's anyway). */
const MAX_BATCH = 200;

/** The scripts as defined on a connection: the key count, then three keys per delivery, then its ARGV. */
type LimitsRedis = RedisClient & {
  hookfleetAdmit(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<unknown[][]>;
  hookfleetRelease(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<unknown[][]>;
};

interface ScriptCall {
  keys: LimitKeys;
  args: (string | number)[];
}

/**
 * The store a fleet shares: the .lua scripts on Redis. On one Redis node, the admissions of one
 * turn of the event loop go out as one script call, and so do the releases (turnBatch.ts); on a
 * Redis Cluster each endpoint's keys may live on another node, so each call carries one delivery.
 */
export function redisLimitsStore(redis: RedisClient, prefix: string): LimitsStore {
  const scripts = redis as LimitsRedis;
  if (typeof scripts.hookfleetAdmit !== 'function') {
    redis.defineCommand('hookfleetAdmit', { lua: ADMIT_SCRIPT });
    redis.defineCommand('hookfleetRelease', { lua: RELEASE_SCRIPT });
  }
  const batched = (script: 'hookfleetAdmit' | 'hookfleetRelease') => {
    const send = async (calls: readonly ScriptCall[]) => {
      const keys = calls.flatMap((call) => call.keys);
      const args = calls.flatMap((call) => call.args);
      const answers = await scripts[script](keys.length, ...keys, ...args);
      // A delivery whose part of the script failed answers ['error', message].
      return answers.map((answer) =>
        answer[0] === 'error' ? new Error(`${script}: ${String(answer[1])}`) : answer,
      );
    };
    if (redis.isCluster) {
      return async (call: ScriptCall) => {
        const [answer] = await send([call]);
        if (answer instanceof Error) throw answer;
        return answer!;
      };
    }
    return turnBatch(send, MAX_BATCH);
  };
  const admit = batched('hookfleetAdmit');
  const release = batched('hookfleetRelease');
  return {
    admit: async (keys, args) => (await admit({ keys, args })) as [string, number, number?],
    release: async (keys, args) => (await release({ keys, args })) as string[],
    read: (endpointIds, nowMs) => readCircuitStates(redis, prefix, endpointIds, nowMs),
  };
}

export function createEndpointLimits(options: EndpointLimitsOptions): EndpointLimits {
  const { prefix, maxInFlight, failureThreshold, cooldownMs, leaseMs, logger, metrics } = options;
  const enabled = maxInFlight > 0 || failureThreshold > 0;
  const placeReuseMs = options.placeReuseMs ?? 0;
  const clock = options.now ?? Date.now;
  // A token only has to be unique among one endpoint's places: a random part per process and a
  // counter are, and cost less per delivery than random bytes each time.
  const tokenPrefix = `${randomBytes(6).toString('base64url')}.`;
  let tokenCount = 0;
  if (!options.store && !options.redis) throw new Error('endpoint limits need redis or a store');
  const store = options.store ?? redisLimitsStore(options.redis!, prefix);
  const keysOf = (id: string): LimitKeys => [stateKey(id), inFlightSetKey(id), postponedKey(id)];
  const stateKey = (id: string) => endpointStateKey(prefix, id);
  const inFlightSetKey = (id: string) => inFlightKey(prefix, id);
  const postponedKey = (id: string) => endpointLimitsKey(prefix, id, 'postponed');

  let lastWarningMs = 0;
  const warn = (error: unknown, what: string) => {
    if (Date.now() - lastWarningMs < WARNING_INTERVAL_MS) return;
    lastWarningMs = Date.now();
    logger.warn({ err: error }, `endpoint limits: ${what} failed; delivering without limits`);
  };

  async function giveBack(
    endpointId: string,
    token: string,
    /** `kept`: a place kept after successes, whose successes were already counted. */
    verdict: AttemptVerdict | 'kept',
    attemptMs: number,
  ): Promise<void> {
    try {
      const [transition, ...postponed] = await store.release(keysOf(endpointId), [
        token,
        verdict,
        clock(),
        failureThreshold,
        cooldownMs,
        Math.max(cooldownMs, MAX_COOLDOWN_MS),
        STATE_KEY_TTL_MS,
        maxInFlight,
        attemptMs,
        MAX_PROMOTED_ON_CLOSE,
      ]);
      if (transition === 'opened' || transition === 'reopened') {
        metrics?.circuitsOpened.inc();
        logger.warn(
          { endpointId, transition },
          'circuit open: deliveries to this endpoint are postponed',
        );
      } else if (transition === 'closed') {
        logger.info(
          { endpointId, postponed: postponed.length },
          'circuit closed: endpoint recovered; sending what it postponed',
        );
        options.onCircuitClosed?.(endpointId, postponed);
      }
    } catch (error) {
      // The lease runs out by itself; the verdict is lost, which only delays a transition.
      warn(error, 'release');
    }
  }

  const kept = keptPlaces({
    placeReuseMs,
    clock,
    giveBack: (endpointId, place) => giveBack(endpointId, place.token, 'kept', place.attemptMs),
  });

  return {
    async admit(endpointId, jobId, ratePerSecond) {
      const rate = ratePerSecond ?? 0;
      if (!enabled && rate <= 0) {
        return { admitted: true, permit: { endpointId, token: undefined } };
      }
      const now = clock();
      // A place kept after a success on this endpoint: no need to ask Redis. Never with a rate
      // limit, which counts every request (one may have been set since the place was admitted).
      const place = rate <= 0 ? kept.take(endpointId, now) : undefined;
      if (place) {
        return {
          admitted: true,
          permit: {
            endpointId,
            token: place.token,
            admittedAtMs: place.admittedAtMs,
            takenAtMs: now,
            keepable: true,
          },
        };
      }
      const token = `${tokenPrefix}${(++tokenCount).toString(36)}`;
      let answer: [string, number, number?];
      try {
        answer = await store.admit(keysOf(endpointId), [
          now,
          token,
          leaseMs,
          maxInFlight,
          failureThreshold > 0 ? 1 : 0,
          jobId ?? '',
          STATE_KEY_TTL_MS,
          rate,
          MAX_BUSY_WAIT_MS,
          MIN_BUSY_WAIT_MS,
          BUSY_SPACING_MS,
        ]);
      } catch (error) {
        warn(error, 'admission');
        return { admitted: true, permit: { endpointId, token: undefined } };
      }
      // `detail`: for an admission whether the endpoint is healthy, for a refusal the spread.
      const [verdict, value, detail] = answer;
      if (verdict === 'admitted') {
        if (value === 1) logger.info({ endpointId }, 'circuit half-open: sending a probe');
        return {
          admitted: true,
          permit: { endpointId, token, admittedAtMs: now, takenAtMs: now, keepable: detail === 1 },
        };
      }
      let reason: 'endpoint_busy' | 'rate_limited' | 'circuit_open';
      let retryInMs: number;
      if (verdict === 'busy' || verdict === 'rate') {
        reason = verdict === 'busy' ? 'endpoint_busy' : 'rate_limited';
        // Within its own place in the queue (spread: half the spacing), so the order holds.
        retryInMs = Math.round(value + Math.random() * (detail ?? 0));
      } else {
        reason = 'circuit_open';
        const baseMs = Math.max(
          50,
          verdict === 'open' ? value - now : Math.min(value - now, PROBE_WAIT_MS),
        );
        // Spread the waiting deliveries so they do not all come back in the same instant.
        retryInMs = Math.round(baseMs * (1 + Math.random() / 2));
      }
      metrics?.deliveriesPostponed.inc({ reason });
      return { admitted: false, reason, retryInMs };
    },

    async release(permit, verdict) {
      const { endpointId, token } = permit;
      if (token === undefined) return;
      const now = clock();
      const attemptMs = Math.max(0, now - (permit.takenAtMs ?? now));
      if (verdict === 'failed') kept.failed(endpointId, now);
      if (
        verdict === 'succeeded' &&
        permit.keepable &&
        kept.keep(endpointId, permit, now, attemptMs)
      ) {
        return;
      }
      await giveBack(endpointId, token, verdict, attemptMs);
    },

    circuitStates: (endpointIds) => store.read(endpointIds, clock()),

    close: () => kept.close(),
  };
}

/** A place kept for its endpoint's next delivery. */
interface KeptPlace {
  token: string;
  admittedAtMs: number;
  idleSinceMs: number;
  /** Its last attempt's duration, reported when it is given back. */
  attemptMs: number;
}

/**
 * The places this process keeps after successes, per endpoint (see "Kept places" at the top), and
 * the timer that gives back those idle for PLACE_LINGER_MS or too old to carry another attempt.
 */
function keptPlaces(options: {
  placeReuseMs: number;
  clock: () => number;
  giveBack: (endpointId: string, place: KeptPlace) => Promise<void>;
}) {
  const { placeReuseMs, clock, giveBack } = options;
  const idle = new Map<string, KeptPlace[]>();
  // When a delivery to the endpoint last failed here: places admitted before are not kept.
  const lastFailureMs = new Map<string, number>();
  const givingBack = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const young = (admittedAtMs: number, now: number) => now - admittedAtMs < placeReuseMs;
  const release = (endpointId: string, place: KeptPlace) => {
    const done = giveBack(endpointId, place).finally(() => givingBack.delete(done));
    givingBack.add(done);
  };
  const schedule = () => {
    timer ??= setTimeout(sweep, PLACE_LINGER_MS).unref();
  };

  function sweep() {
    timer = undefined;
    const now = clock();
    for (const [endpointId, places] of idle) {
      const left = places.filter((place) => {
        const keep = now - place.idleSinceMs < PLACE_LINGER_MS && young(place.admittedAtMs, now);
        if (!keep) release(endpointId, place);
        return keep;
      });
      if (left.length > 0) idle.set(endpointId, left);
      else idle.delete(endpointId);
    }
    for (const [endpointId, ms] of lastFailureMs) {
      if (!young(ms, now)) lastFailureMs.delete(endpointId);
    }
    if (idle.size > 0 || lastFailureMs.size > 0) schedule();
  }

  return {
    /** A place for a delivery to `endpointId`, if one is kept and young enough. */
    take(endpointId: string, now: number): KeptPlace | undefined {
      const places = idle.get(endpointId);
      if (!places) return undefined;
      let place: KeptPlace | undefined;
      // The one kept last first: the older ones are the ones to age out.
      while ((place = places.pop()) && !young(place.admittedAtMs, now)) release(endpointId, place);
      if (places.length === 0) idle.delete(endpointId);
      return place;
    },
    /** Keeps the place of a success if it may carry another attempt; false: give it back. */
    keep(endpointId: string, permit: Permit, now: number, attemptMs: number): boolean {
      const admittedAtMs = permit.admittedAtMs ?? 0;
      if (closed || placeReuseMs <= 0 || !young(admittedAtMs, now)) return false;
      if ((lastFailureMs.get(endpointId) ?? -Infinity) >= admittedAtMs) return false;
      const place = { token: permit.token!, admittedAtMs, idleSinceMs: now, attemptMs };
      const places = idle.get(endpointId);
      if (places) places.push(place);
      else idle.set(endpointId, [place]);
      schedule();
      return true;
    },
    /** A delivery failed: the endpoint's kept places go back, and none admitted before is kept. */
    failed(endpointId: string, now: number): void {
      if (placeReuseMs <= 0) return;
      lastFailureMs.set(endpointId, now);
      for (const place of idle.get(endpointId) ?? []) release(endpointId, place);
      idle.delete(endpointId);
      schedule();
    },
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      for (const [endpointId, places] of idle)
        for (const place of places) release(endpointId, place);
      idle.clear();
      lastFailureMs.clear();
      await Promise.all(givingBack);
    },
  };
}
