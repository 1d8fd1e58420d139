/**
 * Writes a batch of delivery outcomes so that no row can hold up the rows beside it.
 *
 * The batch goes out as one statement. When PostgreSQL refuses it for the values of some row
 * (db/deliveryOutcomes.ts `isRowCausedError`: a NUL in a text, a number out of range, …), the
 * batch is cut in halves and each half written, recursively, so one refused row among n costs
 * about 2·log2(n) statements and every row that PostgreSQL accepts is written. Measured on the
 * 2-core development machine, 2,000 attempt rows of 50 endpoints: 60 ms for the clean batch; with
 * one bad row 24 statements, 240 ms; with ten, 155 statements, 630 ms (medians of five). A row
 * refused alone is written once more with its offending fields replaced, and dropped if even that
 * is refused: it is never retried again, and the caller logs and counts it.
 *
 * Items are an endpoint's tally and each attempt row, apart: a bad attempt row never holds up
 * its endpoint's `last_success_at` and counters. Each statement is atomic by itself, so when a
 * write fails for any other reason (connection lost, deadline, shutdown) the caller gets the slice
 * that failed (written or not: unknown) and the items not tried yet, and handles them as it
 * handles a whole batch.
 */
import {
  isRowCausedError,
  repairAttempt,
  repairTally,
  sqlStateOf,
  type AttemptRecord,
  type EndpointTally,
} from '../db/deliveryOutcomes.js';

export interface OutcomeBatch {
  tallies: Map<string, EndpointTally>;
  attempts: AttemptRecord[];
}

/** A row PostgreSQL refused even written alone. */
export interface RefusedRow {
  /** Written with its offending fields replaced, or dropped because even that was refused. */
  action: 'repaired' | 'dropped';
  /** SQLSTATE of the last refusal. */
  sqlState: string | undefined;
  endpointId: string;
  /** The attempt row as first refused; undefined for an endpoint tally. */
  attempt?: AttemptRecord;
  /** The endpoint tally as first refused; undefined for an attempt row. */
  tally?: EndpointTally;
}

export type IsolatingWriteResult = {
  /** Statements sent, the first whole-batch one included. */
  statements: number;
  refused: RefusedRow[];
} & (
  | { ok: true }
  | {
      ok: false;
      /** Why the write stopped: not a row's doing. */
      error: unknown;
      /** The slice whose statement failed; PostgreSQL may or may not have committed it. */
      failed: OutcomeBatch;
      /** Items not tried yet. */
      untried: OutcomeBatch;
    }
);

type Item = { endpointId: string } & ({ tally: EndpointTally } | { attempt: AttemptRecord });

/** Raised inside the bisection when a write fails for a reason no row causes. */
class Interrupted extends Error {
  constructor(
    readonly error: unknown,
    readonly failed: OutcomeBatch,
    /** Index of the first item after the failed slice. */
    readonly end: number,
  ) {
    super('outcome write interrupted', { cause: error });
  }
}

export async function writeIsolatingRows(
  batch: OutcomeBatch,
  write: (slice: OutcomeBatch) => Promise<void>,
): Promise<IsolatingWriteResult> {
  let statements = 0;
  const refused: RefusedRow[] = [];
  const counted = async (slice: OutcomeBatch) => {
    statements += 1;
    await write(slice);
  };
  try {
    await counted(batch);
    return { ok: true, statements, refused };
  } catch (error) {
    if (!isRowCausedError(error)) {
      return { ok: false, error, failed: batch, untried: fromItems([]), statements, refused };
    }
    const items = toItems(batch);
    try {
      await isolate(items, 0, items.length, error, counted, refused);
      return { ok: true, statements, refused };
    } catch (stop) {
      if (!(stop instanceof Interrupted)) throw stop;
      const { error: cause, failed, end } = stop;
      return {
        ok: false,
        error: cause,
        failed,
        untried: fromItems(items.slice(end)),
        statements,
        refused,
      };
    }
  }
}

/** Writes items[start, end), which PostgreSQL refused as one statement with `error`. */
async function isolate(
  items: readonly Item[],
  start: number,
  end: number,
  error: unknown,
  write: (slice: OutcomeBatch) => Promise<void>,
  refused: RefusedRow[],
): Promise<void> {
  if (end - start === 1) return writeAlone(items[start]!, end, error, write, refused);
  const middle = start + Math.ceil((end - start) / 2);
  for (const [from, to] of [
    [start, middle],
    [middle, end],
  ] as const) {
    const slice = fromItems(items.slice(from, to));
    try {
      await write(slice);
    } catch (sliceError) {
      if (!isRowCausedError(sliceError)) throw new Interrupted(sliceError, slice, to);
      await isolate(items, from, to, sliceError, write, refused);
    }
  }
}

/** Writes one refused item again with its offending fields replaced; drops it if still refused. */
async function writeAlone(
  item: Item,
  end: number,
  error: unknown,
  write: (slice: OutcomeBatch) => Promise<void>,
  refused: RefusedRow[],
): Promise<void> {
  const sqlState = sqlStateOf(error);
  const repaired: Item =
    'tally' in item
      ? { endpointId: item.endpointId, tally: repairTally(item.tally) }
      : { endpointId: item.endpointId, attempt: repairAttempt(item.attempt, sqlState) };
  const row = {
    endpointId: item.endpointId,
    ...('tally' in item ? { tally: item.tally } : { attempt: item.attempt }),
  };
  try {
    await write(fromItems([repaired]));
    refused.push({ ...row, action: 'repaired', sqlState });
  } catch (again) {
    if (!isRowCausedError(again)) throw new Interrupted(again, fromItems([repaired]), end);
    refused.push({ ...row, action: 'dropped', sqlState: sqlStateOf(again) });
  }
}

/** Each endpoint's tally followed by its attempt rows, endpoints in id order. */
function toItems(batch: OutcomeBatch): Item[] {
  const byEndpoint = new Map<string, Item[]>();
  for (const [endpointId, tally] of batch.tallies)
    byEndpoint.set(endpointId, [{ endpointId, tally }]);
  for (const attempt of batch.attempts) {
    const items = byEndpoint.get(attempt.endpointId) ?? [];
    items.push({ endpointId: attempt.endpointId, attempt });
    byEndpoint.set(attempt.endpointId, items);
  }
  return [...byEndpoint.keys()].sort().flatMap((id) => byEndpoint.get(id)!);
}

function fromItems(items: readonly Item[]): OutcomeBatch {
  const batch: OutcomeBatch = { tallies: new Map(), attempts: [] };
  for (const item of items) {
    if ('tally' in item) batch.tallies.set(item.endpointId, item.tally);
    else batch.attempts.push(item.attempt);
  }
  return batch;
}
