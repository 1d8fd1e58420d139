/**
 * Requests made in the same turn of the event loop, sent as one.
 *
 * A worker's attempts and jobs start and end in I/O callbacks: each HTTP answer and each job BullMQ
 * hands over arrives in a callback of its own. Requests held until setImmediate, after every
 * callback of the turn has run, go out together: the endpoint limits' admissions of a turn as one
 * Redis script call and its releases as another, a turn's progress marks as one BITFIELD per
 * message, its fan-outs' message rows and endpoint rows as one PostgreSQL query each. With 50
 * attempts in flight a busy turn holds dozens; the wait is the rest of the turn, well under a
 * millisecond.
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
