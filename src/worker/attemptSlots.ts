/**
 * The worker process's HTTP attempts in flight (HOOKFLEET_CONCURRENCY), shared by every fan-out
 * and every delivery job: a message to 10,000 endpoints takes slots one at a time as they free
 * up, and so does a retry, so the bound holds whatever mix of jobs the process is running.
 * Waiters are served first come, first served.
 */
export interface AttemptSlots {
  /** Resolves with the slot's release function once a slot is free. Call it exactly once. */
  acquire(): Promise<() => void>;
  /** Slots taken now. */
  readonly used: number;
}

export function createAttemptSlots(size: number): AttemptSlots {
  let used = 0;
  const waiting: ((release: () => void) => void)[] = [];

  function release(): void {
    const next = waiting.shift();
    // Handed straight to the next waiter: the count does not change.
    if (next) next(once());
    else used -= 1;
  }

  function once(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  }

  return {
    acquire() {
      if (used < size) {
        used += 1;
        return Promise.resolve(once());
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    get used() {
      return used;
    },
  };
}
