/**
 * The per-endpoint limits' store in one process's memory, for trial mode (queues on PostgreSQL,
 * no Redis): the same state machine as endpointLimitsAdmit.lua and endpointLimitsRelease.lua
 * (in-flight limit, circuit breaker, requests-per-second limit, queue places for refused
 * deliveries), line for line, taking the same keys and arguments and giving the same answers, so
 * endpointLimits.ts works on either; test/integration/localEndpointLimits.test.ts holds the two
 * to each other. Node runs each call to the end before the next, which gives the atomicity Redis
 * gives the scripts. What it cannot do is share: every process has its own limits, which is why
 * trial mode is for one process. Keys never expire here; an endpoint's entry is a few hundred
 * bytes.
 */
import type { QueueBackend } from '../queueBackend.js';
import {
  endpointStateKey,
  redisLimitsStore,
  type CircuitState,
  type LimitsStore,
} from './endpointLimits.js';

/** Most postponed deliveries remembered per endpoint; beyond, they come back on their timers. */
const MAX_POSTPONED_TRACKED = 100_000;

interface EndpointState {
  state?: 'closed' | 'open' | 'half-open';
  limit?: number;
  /** The last successful attempt's duration: how fast the endpoint drains its queue. */
  latencyMs?: number;
  /** The last place handed out in the endpoint's queue of postponed deliveries. */
  queueUntil?: number;
  /** When the next request is due under the endpoint's requests-per-second limit. */
  rateAt?: number;
  failures?: number;
  retryAt?: number;
  probe?: string;
  probeUntil?: number;
  opens?: number;
}

/** Redis turns the numbers a script returns into integers, dropping any fraction. */
const asReply = (value: number) => Math.trunc(value);

/** The state every limits instance of a process shares (two workers' limits, the api's view). */
export interface LocalLimitsState {
  endpoints: Map<string, EndpointState>;
  /** Token -> lease end, per in-flight key. */
  inFlight: Map<string, Map<string, number>>;
  postponed: Map<string, Set<string>>;
}

export function createLocalLimitsState(): LocalLimitsState {
  return { endpoints: new Map(), inFlight: new Map(), postponed: new Map() };
}

/** `prefix`: the queue prefix the limits' keys are made with (read() finds them by it). */
export function localLimitsStore(shared: LocalLimitsState, prefix: string): LimitsStore {
  const hash = (key: string) => {
    let entry = shared.endpoints.get(key);
    if (!entry) shared.endpoints.set(key, (entry = {}));
    return entry;
  };
  const leases = (key: string) => {
    let entry = shared.inFlight.get(key);
    if (!entry) shared.inFlight.set(key, (entry = new Map<string, number>()));
    return entry;
  };
  const postponedSet = (key: string) => {
    let entry = shared.postponed.get(key);
    if (!entry) shared.postponed.set(key, (entry = new Set()));
    return entry;
  };

  return {
    // endpointLimitsAdmit.lua. ARGV: now, token, leaseMs, maxInFlight, breakerOn, jobId, keyTtlMs,
    // ratePerSecond, maxWaitMs, minWaitMs, unknownSpacingMs.
    admit([stateKey, inFlightKey, postponedKey], args) {
      const [now, token, leaseMs, maxInFlightArg, breakerOn, jobId, , rateArg] = args;
      const maxWait = Number(args[8]);
      const minWait = Number(args[9]);
      const unknownSpacingMs = Number(args[10]);
      const nowMs = Number(now);
      const leaseUntil = nowMs + Number(leaseMs);
      const h = hash(stateKey);
      let probe = false;
      if (String(breakerOn) === '1' && (h.state === 'open' || h.state === 'half-open')) {
        const state = h.state;
        const untilMs = (state === 'open' ? h.retryAt : h.probeUntil) ?? 0;
        if (nowMs < untilMs) {
          const postponed = postponedSet(postponedKey);
          if (jobId !== '' && postponed.size < MAX_POSTPONED_TRACKED) postponed.add(String(jobId));
          return Promise.resolve([state, asReply(untilMs)]);
        }
        probe = true;
      }

      const maxInFlight = Number(maxInFlightArg);
      const rate = Number(rateArg);
      const cap = Math.min(h.limit ?? 1, maxInFlight);
      // Requests-per-second limit, a generic cell rate algorithm (see the script for why a request
      // may go out half an interval early).
      const intervalMs = rate > 0 ? 1000 / rate : 0;
      const rateDue = h.rateAt ?? 0;
      let refused: 'rate' | 'busy' | undefined;
      if (rate > 0 && nowMs < rateDue - intervalMs / 2) {
        refused = 'rate';
      } else if (maxInFlight > 0) {
        const inFlight = leases(inFlightKey);
        for (const [held, until] of inFlight) if (until <= nowMs) inFlight.delete(held);
        if (inFlight.size >= cap) refused = 'busy';
      }

      if (refused) {
        // The next free place in the endpoint's queue of postponed deliveries, at most maxWait
        // ahead (the script says how places are spaced).
        let spacing = 0;
        if (maxInFlight > 0) {
          spacing = h.latencyMs !== undefined ? h.latencyMs / Math.max(cap, 1) : unknownSpacingMs;
        }
        spacing = Math.max(spacing, intervalMs);
        const place = Math.max(
          (h.queueUntil ?? 0) + spacing,
          nowMs + Math.max(spacing, minWait),
          rateDue,
        );
        if (place - nowMs > maxWait) {
          return Promise.resolve([refused, asReply(maxWait), asReply(maxWait / 2)]);
        }
        h.queueUntil = place;
        return Promise.resolve([refused, Math.floor(place - nowMs), Math.floor(spacing / 2)]);
      }

      if (maxInFlight > 0) leases(inFlightKey).set(String(token), leaseUntil);
      if (rate > 0) h.rateAt = Math.max(rateDue, nowMs) + intervalMs;
      if (probe) {
        Object.assign(h, { state: 'half-open', probe: String(token), probeUntil: leaseUntil });
        return Promise.resolve(['admitted', 1, 0]);
      }
      const healthy =
        (h.state === undefined || h.state === 'closed') &&
        !h.failures &&
        rate === 0 &&
        (maxInFlight === 0 || (h.limit ?? 1) >= maxInFlight);
      return Promise.resolve(['admitted', 0, healthy ? 1 : 0]);
    },

    // endpointLimitsRelease.lua. ARGV: token, verdict, now, failureThreshold, cooldownMs,
    // maxCooldownMs, keyTtlMs, maxInFlight, attemptMs, maxPromoted.
    release([stateKey, inFlightKey, postponedKey], args) {
      const [token, verdict, now, threshold, cooldownMs, maxCooldownMs, , maxInFlight] = args;
      const [attemptMs, maxPromoted] = args.slice(8).map(Number);
      leases(inFlightKey).delete(String(token));
      if (verdict === 'none') return Promise.resolve(['none']);
      const h = hash(stateKey);
      if (verdict === 'kept') {
        h.latencyMs = attemptMs;
        return Promise.resolve(['none']);
      }
      const state = h.state ?? 'closed';
      const limit = h.limit ?? 1;
      const cap = Number(maxInFlight);
      // Only a success says how fast the endpoint drains (the release script says why).
      if (verdict === 'succeeded') h.latencyMs = attemptMs;
      if (verdict === 'succeeded') {
        // A healthy endpoint at its full limit has nothing else to change: the common path.
        if (state === 'closed' && !h.failures && (cap === 0 || limit >= cap)) {
          return Promise.resolve(['none']);
        }
        Object.assign(h, {
          state: 'closed',
          failures: 0,
          limit: Math.min(limit * 2, Math.max(cap, 1)),
        });
        delete h.retryAt;
        delete h.probe;
        delete h.probeUntil;
        delete h.opens;
        if (state === 'closed') return Promise.resolve(['none']);
        const postponed = [...postponedSet(postponedKey)].slice(0, maxPromoted);
        shared.postponed.delete(postponedKey);
        return Promise.resolve(['closed', ...postponed]);
      }
      const nowMs = Number(now);
      h.failures = (h.failures ?? 0) + 1;
      h.limit = Math.max(1, Math.floor(limit / 2));
      let result = 'none';
      if (Number(threshold) > 0) {
        if (state === 'half-open' && h.probe === String(token)) {
          h.opens = (h.opens ?? 0) + 1;
          const cooldown = Math.min(Number(cooldownMs) * 2 ** (h.opens - 1), Number(maxCooldownMs));
          Object.assign(h, { state: 'open', retryAt: nowMs + cooldown });
          delete h.probe;
          delete h.probeUntil;
          result = 'reopened';
        } else if (state === 'closed' && h.failures >= Number(threshold)) {
          Object.assign(h, { state: 'open', opens: 1, retryAt: nowMs + Number(cooldownMs) });
          result = 'opened';
        }
      }
      return Promise.resolve([result]);
    },

    read(endpointIds, nowMs) {
      const states = new Map<string, CircuitState>();
      for (const id of endpointIds) {
        const entry = shared.endpoints.get(endpointStateKey(prefix, id));
        if (entry?.state === 'open') {
          const retryAt = entry.retryAt ?? 0;
          states.set(id, {
            state: retryAt > nowMs ? 'open' : 'half-open',
            retryAt: new Date(retryAt),
          });
        } else {
          states.set(id, { state: entry?.state === 'half-open' ? 'half-open' : 'closed' });
        }
      }
      return Promise.resolve(states);
    },
  };
}

/**
 * The limits' store of `backend`: Redis's scripts, shared by the fleet, or (PostgreSQL, trial
 * mode) this process's memory, shared by the limits made with the same `state`.
 */
export function endpointLimitsStoreOn(
  backend: QueueBackend,
  prefix: string,
  state: LocalLimitsState = createLocalLimitsState(),
): LimitsStore {
  return backend.kind === 'redis'
    ? redisLimitsStore(backend.redis('limits'), prefix)
    : localLimitsStore(state, prefix);
}
