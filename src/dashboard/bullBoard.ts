/**
 * Bull Board (https://github.com/felixmosh/bull-board) for the `messages` (`fan-out` jobs),
 * `deliveries` (`retry`, `redeliver`, `replay`) and `maintenance` queues, as a Hono sub-app the
 * API server mounts behind basic auth. Retries from the board are allowed (a failed delivery can
 * be replayed by hand); job data is shown with any secret-looking field redacted, although jobs
 * carry only ids by design, no secrets and no bodies (see jobs.ts).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import { Hono, type MiddlewareHandler } from 'hono';

/** Keys whose values the board never shows. */
const SECRET_KEY = /secret|signature|authorization/i;
/** Deeper than this, job data is not walked further (it is shown as is). */
const MAX_REDACT_DEPTH = 20;

/** A copy of `value` with every property whose key looks secret replaced by '[redacted]'. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_REDACT_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      SECRET_KEY.test(key) ? '[redacted]' : redactSecrets(item, depth + 1),
    ]),
  );
}

export interface BullBoardOptions {
  /** Each queue, with what goes before its name on the board (a shard's, queueShards.ts). */
  queues: readonly { queue: Queue; boardPrefix?: string }[];
  /** Where the board is mounted, e.g. '/admin/queues'; its pages link to paths under it. */
  basePath: string;
}

/**
 * The board acts on jobs (retry, remove, promote) with the operator's basic-auth rights, which a
 * browser sends by itself; a page that framed it could trick a click. Like the endpoint health
 * pages, it may be shown in no frame at all. Only frame-ancestors is set: the board's own scripts
 * and styles are Bull Board's business, and a narrower policy would break them on an upgrade.
 */
function refuseFraming(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.res.headers.set('x-frame-options', 'DENY');
    c.res.headers.set('content-security-policy', "frame-ancestors 'none'");
  };
}

/** The board's pages, assets and JSON API; mount it with `app.route(basePath, board)`. */
export function createBullBoardApp(options: BullBoardOptions): Hono {
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(options.basePath);
  const adapters = options.queues.map(({ queue, boardPrefix }) => {
    const adapter = new BullMQAdapter(queue, {
      readOnlyMode: false,
      allowRetries: true,
      ...(boardPrefix && { prefix: boardPrefix }),
    });
    adapter.setFormatter('data', (data: unknown) => redactSecrets(data));
    return adapter;
  });
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: { uiConfig: { boardTitle: 'hookfleet' } },
  });
  const board = new Hono();
  board.use('*', refuseFraming());
  board.route('/', serverAdapter.registerPlugin());
  return board;
}
