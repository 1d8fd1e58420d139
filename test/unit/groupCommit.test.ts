import { describe, expect, it } from 'vitest';
import { GroupCommit, type GroupCommitOptions } from '../../src/producer/groupCommit.js';

/** A write the test settles by hand, recording each batch it was given. */
function manualWrites() {
  const batches: number[][] = [];
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const write = (items: readonly number[]) => {
    batches.push([...items]);
    return new Promise<PromiseSettledResult<string>[]>((resolve, reject) => {
      pending.push({
        resolve: () => resolve(items.map((n) => ({ status: 'fulfilled', value: `w${n}` }))),
        reject,
      });
    });
  };
  /** Resolves once the write of batch number `index` (0-based) has started. */
  const started = async (index: number) => {
    while (batches.length <= index) await new Promise((resolve) => setImmediate(resolve));
  };
  return { batches, pending, write, started };
}

function groupCommit(
  write: GroupCommitOptions<number, string>['write'],
  options: Partial<GroupCommitOptions<number, string>> = {},
): GroupCommit<number, string> {
  return new GroupCommit<number, string>({
    write,
    overloaded: (queued) => new Error(`overloaded (${queued} waiting)`),
    timedOut: (item, waitedMs, written) =>
      new Error(`${item} ${written ? 'written' : 'waited'} past ${waitedMs} ms`),
    closed: () => new Error('closed'),
    ...options,
  });
}

describe('GroupCommit', () => {
  it('writes a lone item at once, without waiting for company', async () => {
    const batches: number[][] = [];
    const commit = groupCommit((items) => {
      batches.push([...items]);
      return Promise.resolve(items.map((n) => ({ status: 'fulfilled', value: `w${n}` })));
    });
    await expect(commit.submit(1)).resolves.toBe('w1');
    await expect(commit.submit(2)).resolves.toBe('w2');
    expect(batches).toEqual([[1], [2]]);
  });

  it('writes what arrived while a batch was in flight together, in the next batch', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write);
    const first = commit.submit(1);
    await writes.started(0);
    const rest = [2, 3, 4].map((n) => commit.submit(n));
    expect(commit.queued).toBe(3);
    writes.pending[0]!.resolve();
    await expect(first).resolves.toBe('w1');
    await writes.started(1);
    writes.pending[1]!.resolve();
    await expect(Promise.all(rest)).resolves.toEqual(['w2', 'w3', 'w4']);
    expect(writes.batches).toEqual([[1], [2, 3, 4]]);
  });

  it('puts items submitted in the same tick into one batch', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write);
    const all = [1, 2, 3].map((n) => commit.submit(n));
    await writes.started(0);
    writes.pending[0]!.resolve();
    await expect(Promise.all(all)).resolves.toEqual(['w1', 'w2', 'w3']);
    expect(writes.batches).toEqual([[1, 2, 3]]);
  });

  it('caps a batch by count and by size', async () => {
    const byCount = manualWrites();
    const counted = groupCommit(byCount.write, { maxBatch: 2 });
    const a = [1, 2, 3].map((n) => counted.submit(n));
    await byCount.started(0);
    byCount.pending[0]!.resolve();
    await byCount.started(1);
    byCount.pending[1]!.resolve();
    await Promise.all(a);
    expect(byCount.batches).toEqual([[1, 2], [3]]);

    const bySize = manualWrites();
    const sized = groupCommit(bySize.write, { maxBatchSize: 10, sizeOf: (n) => n });
    const b = [6, 4, 1, 20].map((n) => sized.submit(n));
    for (let i = 0; i < 3; i++) {
      await bySize.started(i);
      bySize.pending[i]!.resolve();
    }
    await Promise.all(b);
    // A batch always takes one item, however large.
    expect(bySize.batches).toEqual([[6, 4], [1], [20]]);
  });

  it('refuses at once past maxQueued, without touching the items already waiting', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write, { maxQueued: 2 });
    const first = commit.submit(1);
    await writes.started(0);
    const waiting = [commit.submit(2), commit.submit(3)];
    await expect(commit.submit(4)).rejects.toThrow('overloaded (2 waiting)');
    writes.pending[0]!.resolve();
    await writes.started(1);
    writes.pending[1]!.resolve();
    await expect(Promise.all([first, ...waiting])).resolves.toEqual(['w1', 'w2', 'w3']);
  });

  it('refuses at once past maxQueuedSize, and accepts again once the waiting items went out', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write, {
      maxQueuedSize: 10,
      sizeOf: (n) => n,
      overloaded: (queued, size) => new Error(`overloaded (${queued} waiting, size ${size})`),
    });
    const first = commit.submit(100); // in flight: not counted
    await writes.started(0);
    const waiting = [commit.submit(4), commit.submit(5)];
    await expect(commit.submit(2)).rejects.toThrow('overloaded (2 waiting, size 9)');
    const small = commit.submit(1);
    writes.pending[0]!.resolve();
    await writes.started(1);
    // The waiting items are in flight now; the queue's size starts again from zero.
    const after = commit.submit(9);
    writes.pending[1]!.resolve();
    await writes.started(2);
    writes.pending[2]!.resolve();
    await expect(Promise.all([first, ...waiting, small, after])).resolves.toEqual([
      'w100',
      'w4',
      'w5',
      'w1',
      'w9',
    ]);
  });

  it('takes one item larger than maxQueuedSize when nothing waits', async () => {
    const commit = groupCommit(
      (items) => Promise.resolve(items.map((n) => ({ status: 'fulfilled', value: `w${n}` }))),
      { maxQueuedSize: 10, sizeOf: (n) => n },
    );
    await expect(commit.submit(50)).resolves.toBe('w50');
  });

  it('fails every caller of a batch whose write fails, then goes on with the next batch', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write);
    const first = commit.submit(1);
    await writes.started(0);
    const failing = [commit.submit(2), commit.submit(3)];
    writes.pending[0]!.resolve();
    await first;
    await writes.started(1);
    const after = commit.submit(4);
    writes.pending[1]!.reject(new Error('database down'));
    for (const outcome of await Promise.allSettled(failing)) {
      expect(outcome).toMatchObject({ status: 'rejected', reason: { message: 'database down' } });
    }
    await writes.started(2);
    writes.pending[2]!.resolve();
    await expect(after).resolves.toBe('w4');
  });

  it('hands each caller the outcome its item got in the write', async () => {
    const commit = groupCommit((items) =>
      Promise.resolve(
        items.map((n): PromiseSettledResult<string> =>
          n % 2 === 0
            ? { status: 'rejected', reason: new Error(`${n} refused`) }
            : { status: 'fulfilled', value: `w${n}` },
        ),
      ),
    );
    const outcomes = await Promise.allSettled([1, 2, 3].map((n) => commit.submit(n)));
    expect(outcomes).toMatchObject([
      { status: 'fulfilled', value: 'w1' },
      { status: 'rejected', reason: { message: '2 refused' } },
      { status: 'fulfilled', value: 'w3' },
    ]);
  });

  it('fails a batch not written within the deadline, and writes the next one meanwhile', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write, { deadlineMs: 50, maxWaitMs: 60_000 });
    const stuck = commit.submit(1); // its write never settles
    await writes.started(0);
    const next = commit.submit(2);
    await expect(stuck).rejects.toThrow('1 written past 50 ms');
    await writes.started(1);
    writes.pending[1]!.resolve();
    await expect(next).resolves.toBe('w2');
  });

  it('refuses, unwritten, an item that waited past the deadline for its batch to start', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write, { deadlineMs: 50, maxWaitMs: 10 });
    const first = commit.submit(1); // its write never settles
    await writes.started(0);
    const late = commit.submit(2); // waits for it: 50 ms, more than its 10
    await expect(first).rejects.toThrow('1 written past 50 ms');
    await expect(late).rejects.toThrow('2 waited past 10 ms');
    expect(writes.batches).toEqual([[1]]);
  });

  it('close() lets waiting items be written, then refuses new ones; safe to call twice', async () => {
    const writes = manualWrites();
    const commit = groupCommit(writes.write);
    const items = [commit.submit(1), commit.submit(2)];
    const closed = commit.close();
    await expect(commit.submit(3)).rejects.toThrow('closed');
    await writes.started(0);
    writes.pending[0]!.resolve();
    await closed;
    await commit.close();
    await expect(Promise.all(items)).resolves.toEqual(['w1', 'w2']);
  });
});
