/**
 * What the buttons of the endpoint detail page can do, and the one-line message shown after each.
 *
 * A button POSTs, the server acts and redirects back (POST-redirect-GET) with the outcome in the
 * query string. The query carries an outcome *code* and its numbers, never free text: the line
 * shown is composed here from a fixed vocabulary, so a crafted link cannot make the dashboard
 * display a message of someone else's choosing.
 */
import type { Flash } from './endpointsPageLayout.js';

/** The replay button's choices: how far back failed deliveries are replayed. */
export const REPLAY_WINDOWS = {
  '1h': { ms: 3_600_000, label: 'the last hour' },
  '24h': { ms: 86_400_000, label: 'the last 24 hours' },
  '7d': { ms: 7 * 86_400_000, label: 'the last 7 days' },
  // Failed jobs stay in Redis for 14 days (jobs.ts removeOnFail); older ones are re-enqueued.
  '14d': { ms: 14 * 86_400_000, label: 'the last 14 days' },
} as const;
export type ReplayWindow = keyof typeof REPLAY_WINDOWS;

export function isReplayWindow(value: unknown): value is ReplayWindow {
  return typeof value === 'string' && Object.hasOwn(REPLAY_WINDOWS, value);
}

export type ActionOutcome =
  | { done: 'test-sent'; messageId: string }
  | { done: 'enabled' | 'disabled' | 'already-active' | 'already-disabled' }
  | {
      done: 'replayed';
      since: ReplayWindow;
      total: number;
      retried: number;
      enqueued: number;
      pending: number;
    }
  | { done: 'failed'; code: string };

/** Error codes an action can end with, as operators should read them. */
const ERROR_TEXT: Record<string, string> = {
  endpoint_inactive: 'The endpoint is disabled: enable it first.',
  redis_unavailable: 'Redis is unreachable, so nothing was sent. Try again in a moment.',
  unavailable: 'Redis or PostgreSQL is unreachable. Try again in a moment.',
  not_found: 'The endpoint no longer exists.',
};

/** The query string that carries `outcome` to the page the browser is redirected to. */
export function outcomeQuery(outcome: ActionOutcome): string {
  const entries = Object.entries(outcome).map(([key, value]): [string, string] => [
    key,
    String(value),
  ]);
  return new URLSearchParams(entries).toString();
}

const COUNT = /^\d{1,9}$/;
const MESSAGE_ID = /^msg_[0-9a-z]{1,64}$/;
const CODE = /^[a-z_]{1,40}$/;

/** The line to show for the outcome in `query`; undefined when there is none (or it is malformed). */
export function flashFromQuery(query: Record<string, string | undefined>): Flash | undefined {
  switch (query.done) {
    case 'test-sent':
      return MESSAGE_ID.test(query.messageId ?? '')
        ? ok(`Test event ${query.messageId} queued; a worker delivers it in a moment.`)
        : undefined;
    case 'enabled':
      return ok('Endpoint enabled: it receives deliveries again and its stale clock restarted.');
    case 'disabled':
      return ok('Endpoint disabled: deliveries to it fail until it is enabled again.');
    case 'already-active':
      return ok('The endpoint was already active.');
    case 'already-disabled':
      return ok('The endpoint was already disabled.');
    case 'replayed':
      return replayedFlash(query);
    case 'failed': {
      const code = CODE.test(query.code ?? '') ? query.code! : 'internal';
      return { kind: 'error', text: ERROR_TEXT[code] ?? `The action failed (${code}).` };
    }
    default:
      return undefined;
  }
}

function replayedFlash(query: Record<string, string | undefined>): Flash | undefined {
  const counts = [query.total, query.retried, query.enqueued, query.pending];
  if (!isReplayWindow(query.since) || !counts.every((n) => COUNT.test(n ?? ''))) return undefined;
  const [total, retried, enqueued, pending] = counts.map(Number) as [
    number,
    number,
    number,
    number,
  ];
  const window = REPLAY_WINDOWS[query.since].label;
  if (total === 0) return ok(`No failed deliveries in ${window}: nothing to replay.`);
  return ok(
    `Replaying ${total} failed ${total === 1 ? 'delivery' : 'deliveries'} from ${window}: ` +
      `${retried} retried, ${enqueued} enqueued again, ${pending} already pending.`,
  );
}

function ok(text: string): Flash {
  return { kind: 'ok', text };
}
