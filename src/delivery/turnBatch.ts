/**
 * Requests made in the same turn of the event loop, sent to Redis as one.
 *
 * A worker's attempts end and start in I/O callbacks: each HTTP answer that arrives is a callback
 * of its own, and ioredis's auto-pipelining flushes at the end of each callback (process.nextTick),
 * so every attempt's admission, release and progress mark went out in a write and a reply of its
 * own, three per delivery. Held until setImmediate, after every callback of the turn has run, the
 * requests of a busy turn (dozens, with 50 attempts in flight) go out as one script call or one
 * command each: one write, one reply, and Redis runs its script once per turn instead of once per
 * delivery. The wait is the rest of the current turn, well under a millisecond.
 */

/** Sends a batch; answers one result per item, in order, or an Error for an item that failed. */
export type SendBatch<I, O> = (items: readonly I[]) => Promise<(O | Error)[]>;

/**
 * A function that queues `item` into the current turn's batch and resolves with its own answer.
 * At most `maxItems` go in one call; more in the same turn start another.
 */
export function turnBatch<I, O>(send: SendBatch<I, O>, maxItems: number): (item: I) => Promise<O> {
  let items: I[] = [];
  let waiting: { resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];

  async function flush(
    batch: I[],
    callers: { resolve: (value: O) => void; reject: (error: unknown) => void }[],
  ): Promise<void> {
    try {
      const answers = await send(batch);
      callers.forEach((caller, index) => {
        const answer = answers[index];
        if (index >= answers.length) caller.reject(new Error('no answer for a batched request'));
        else if (answer instanceof Error) caller.reject(answer);
        else caller.resolve(answer as O);
      });
    } catch (error) {
      for (const caller of callers) caller.reject(error);
    }
  }

  function take(): void {
    // Already taken by a full batch; a later item scheduled another turn of its own.
    if (items.length === 0) return;
    const batch = items;
    const callers = waiting;
    items = [];
    waiting = [];
    void flush(batch, callers);
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      if (items.length === 0) setImmediate(take);
      items.push(item);
      waiting.push({ resolve, reject });
      if (items.length >= maxItems) take();
    });
}
