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
  /** When it was admitted: the attempt's duration tells later deliveries how long to wait when busy. */
  admittedAtMs?: number;
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
  what: 'limits' | 'in-flight' | 'postponed',
): string {
  return `${prefix}:endpoint:{${endpointId}}:${what}`;
}

/** The hash holding an endpoint's circuit state, in-flight limit and postponement queue. */
export function endpointStateKey(prefix: string, endpointId: string): string {
  return endpointLimitsKey(prefix, endpointId, 'limits');
}

/**
 * The sorted set of an endpoint's admitted deliveries (member: the permit's token, score: its
 * lease end). A token starts with the delivery's job id and a `/`, so the set also tells which
 * deliveries are being sent now (readDeliveriesInFlight), at no cost per delivery.
 */
function inFlightKey(prefix: string, endpointId: string): string {
  return endpointLimitsKey(prefix, endpointId, 'in-flight');
}

/**
 * Which of a message's deliveries are being sent now, by any worker: the endpoints whose
 * in-flight set holds a live permit of a delivery of `messageId` (its job ids all start with the
 * message id and a dot). Empty when the in-flight limit is off, since nothing is kept then.
 */
export async function readDeliveriesInFlight(
  redis: RedisClient,
  prefix: string,
  messageId: string,
  endpointIds: readonly string[],
  nowMs = Date.now(),
): Promise<ReadonlySet<string>> {
  const sending = new Set<string>();
  if (endpointIds.length === 0) return sending;
  // One command per endpoint rather than one pipeline: on a Redis Cluster each endpoint's set
  // may live on another node, and a cluster pipeline must stay within one slot.
  const replies = await Promise.all(
    endpointIds.map((id) => redis.zrangebyscore(inFlightKey(prefix, id), nowMs, '+inf')),
  );
  const mine = `${messageId}.`;
  endpointIds.forEach((id, index) => {
    if (replies[index]?.some((token) => token.startsWith(mine))) sending.add(id);
  });
  return sending;
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
  const clock = options.now ?? Date.now;
  // A token only has to be unique among one endpoint's deliveries in flight: a random part per
  // process and a counter are, and cost less per delivery than random bytes each time.
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

  return {
    async admit(endpointId, jobId, ratePerSecond) {
      const rate = ratePerSecond ?? 0;
      if (!enabled && rate <= 0) {
        return { admitted: true, permit: { endpointId, token: undefined } };
      }
      // The job id first: readDeliveriesInFlight tells from it which deliveries are being sent.
      const token = `${jobId ?? ''}/${tokenPrefix}${(++tokenCount).toString(36)}`;
      const now = clock();
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
      const [verdict, value, spreadMs] = answer;
      if (verdict === 'admitted') {
        if (value === 1) logger.info({ endpointId }, 'circuit half-open: sending a probe');
        return { admitted: true, permit: { endpointId, token, admittedAtMs: now } };
      }
      let reason: 'endpoint_busy' | 'rate_limited' | 'circuit_open';
      let retryInMs: number;
      if (verdict === 'busy' || verdict === 'rate') {
        reason = verdict === 'busy' ? 'endpoint_busy' : 'rate_limited';
        // Within its own place in the queue (spread: half the spacing), so the order holds.
        retryInMs = Math.round(value + Math.random() * (spreadMs ?? 0));
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
      if (permit.token === undefined) return;
      try {
        const [transition, ...postponed] = await store.release(keysOf(permit.endpointId), [
          permit.token,
          verdict,
          clock(),
          failureThreshold,
          cooldownMs,
          Math.max(cooldownMs, MAX_COOLDOWN_MS),
          STATE_KEY_TTL_MS,
          maxInFlight,
          Math.max(0, clock() - (permit.admittedAtMs ?? clock())),
          MAX_PROMOTED_ON_CLOSE,
        ]);
        if (transition === 'opened' || transition === 'reopened') {
          metrics?.circuitsOpened.inc();
          logger.warn(
            { endpointId: permit.endpointId, transition },
            'circuit open: deliveries to this endpoint are postponed',
          );
        } else if (transition === 'closed') {
          logger.info(
            { endpointId: permit.endpointId, postponed: postponed.length },
            'circuit closed: endpoint recovered; sending what it postponed',
          );
          options.onCircuitClosed?.(permit.endpointId, postponed);
        }
      } catch (error) {
        // The lease runs out by itself; the verdict is lost, which only delays a transition.
        warn(error, 'release');
      }
    },

    circuitStates: (endpointIds) => store.read(endpointIds, clock()),
  };
}
