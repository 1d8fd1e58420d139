/**
 * Coalescing of delivery outcomes per endpoint: what the success recorder keeps in memory between
 * writes, one small entry per endpoint however many attempts it had.
 */
import type { AttemptRecord, EndpointTally } from '../db/deliveryOutcomes.js';

export function emptyTally(): EndpointTally {
  return {
    lastSuccessAtMs: undefined,
    lastFailureAtMs: undefined,
    successes: 0,
    failures: 0,
    failuresSinceSuccess: 0,
    firstFailureSinceSuccessAtMs: undefined,
  };
}

/** Counts `attempt` (at `atMs`) into `tally`, in place. */
export function addToTally(tally: EndpointTally, attempt: AttemptRecord, atMs: number): void {
  if (attempt.outcome === 'succeeded') {
    tally.successes += 1;
    if (tally.lastSuccessAtMs === undefined || atMs >= tally.lastSuccessAtMs) {
      tally.lastSuccessAtMs = atMs;
      tally.failuresSinceSuccess = 0;
      // Failures recorded here before this success (in time) no longer make a streak.
      if (
        tally.firstFailureSinceSuccessAtMs !== undefined &&
        tally.firstFailureSinceSuccessAtMs <= atMs
      )
        tally.firstFailureSinceSuccessAtMs = undefined;
    }
  } else {
    tally.failures += 1;
    tally.lastFailureAtMs = Math.max(tally.lastFailureAtMs ?? atMs, atMs);
    if (tally.lastSuccessAtMs === undefined || atMs >= tally.lastSuccessAtMs) {
      tally.failuresSinceSuccess += 1;
      tally.firstFailureSinceSuccessAtMs = Math.min(
        tally.firstFailureSinceSuccessAtMs ?? atMs,
        atMs,
      );
    }
  }
}

/** Combines an older tally with a newer one for the same endpoint. */
export function mergeTallies(older: EndpointTally, newer: EndpointTally): EndpointTally {
  const max = (a: number | undefined, b: number | undefined) =>
    a === undefined ? b : b === undefined ? a : Math.max(a, b);
  const min = (a: number | undefined, b: number | undefined) =>
    a === undefined ? b : b === undefined ? a : Math.min(a, b);
  return {
    lastSuccessAtMs: max(older.lastSuccessAtMs, newer.lastSuccessAtMs),
    lastFailureAtMs: max(older.lastFailureAtMs, newer.lastFailureAtMs),
    successes: older.successes + newer.successes,
    failures: older.failures + newer.failures,
    failuresSinceSuccess:
      newer.lastSuccessAtMs !== undefined
        ? newer.failuresSinceSuccess
        : older.failuresSinceSuccess + newer.failures,
    firstFailureSinceSuccessAtMs:
      newer.lastSuccessAtMs !== undefined
        ? newer.firstFailureSinceSuccessAtMs
        : min(older.firstFailureSinceSuccessAtMs, newer.firstFailureSinceSuccessAtMs),
  };
}

/** Merges `newer` into `older` (which is changed and returned): the tallies of two batches. */
export function mergeTallyMaps(
  older: Map<string, EndpointTally>,
  newer: ReadonlyMap<string, EndpointTally>,
): Map<string, EndpointTally> {
  for (const [id, tally] of newer) {
    const before = older.get(id);
    older.set(id, before ? mergeTallies(before, tally) : tally);
  }
  return older;
}
