import type { Logger } from './logger.js';

type CloseFn = () => Promise<void> | void;

export interface AddOptions {
  /**
   * Close this resource even when the shutdown ran out of time, after the others (bounded by
   * ALWAYS_TIMEOUT_MS): for what would outlive the process otherwise, like the embedded
   * PostgreSQL server, a process of its own. Default false.
   */
  always?: boolean;
}

/** How long the `always` resources get once the shutdown timed out. */
const ALWAYS_TIMEOUT_MS = 2500;

/**
 * Every resource a process opens registers its close function here; `close()` runs them in
 * reverse order of registration (so a worker stops before the connections it uses), each one
 * once, the whole bounded by a timeout. Calling it again (a second SIGTERM) returns the same
 * promise instead of closing twice.
 */
export class Lifecycle {
  private readonly closers: { name: string; close: CloseFn; always: boolean }[] = [];
  private closing: Promise<boolean> | undefined;

  constructor(private readonly logger?: Logger) {}

  /** Registers a resource; returns it, so `const x = life.add('x', make(), (x) => x.close())`. */
  add<T>(
    name: string,
    resource: T,
    close: (resource: T) => Promise<void> | void,
    options: AddOptions = {},
  ): T {
    let closed: Promise<void> | undefined;
    // Once only: an `always` resource may be reached by both the ordered run and the timeout.
    const closeOnce = () => (closed ??= Promise.resolve().then(() => close(resource)));
    this.closers.push({ name, close: closeOnce, always: options.always ?? false });
    return resource;
  }

  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /** Resolves true when everything closed within `timeoutMs`, false otherwise. */
  close(timeoutMs: number): Promise<boolean> {
    this.closing ??= this.closeAll(timeoutMs);
    return this.closing;
  }

  private async closeAll(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const run = (async () => {
      for (const { name, close } of [...this.closers].reverse()) {
        try {
          await close();
          this.logger?.debug({ resource: name }, 'closed');
        } catch (error) {
          this.logger?.error({ err: error, resource: name }, 'close failed');
        }
      }
      return true as const;
    })();
    const finished = await Promise.race([run, deadline]);
    clearTimeout(timer);
    if (!finished) {
      this.logger?.error({ timeoutMs }, 'shutdown timed out');
      await this.closeAlways();
    }
    return finished;
  }

  private async closeAlways(): Promise<void> {
    for (const { name, close } of [...this.closers].reverse().filter((c) => c.always)) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ALWAYS_TIMEOUT_MS);
      });
      await Promise.race([
        Promise.resolve()
          .then(close)
          .catch((error: unknown) =>
            this.logger?.error({ err: error, resource: name }, 'close failed'),
          ),
        late,
      ]);
      clearTimeout(timer);
    }
  }
}

/**
 * SIGTERM and SIGINT start a graceful shutdown; the process exits when it finishes (code 0) or
 * times out (code 1). A second signal while closing is ignored, since closing is already bounded.
 * `budget`, when given, picks the timeout at the signal (shutdownBudget.ts shortens it when Redis
 * or PostgreSQL is down, since nothing waiting on them will finish).
 */
export function closeOnSignals(
  lifecycle: Lifecycle,
  timeoutMs: number,
  logger: Logger,
  budget?: (timeoutMs: number) => Promise<number>,
): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled || lifecycle.isClosing) return;
    signalled = true;
    logger.info({ signal }, 'shutting down');
    void (budget ? budget(timeoutMs) : Promise.resolve(timeoutMs))
      .catch(() => timeoutMs)
      .then((ms) => lifecycle.close(ms))
      .then((clean) => process.exit(clean ? 0 : 1));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * Errors nobody awaited. postgres.js 3.4.9 lets two kinds escape when a connection drops
 * (porsager/postgres#1208, #1154): a TypeError thrown from a setImmediate in its
 * connection.js (a write scheduled on a socket that has just closed), and the socket error (or
 * CONNECTION_CLOSED, when the socket closed cleanly) of the type lookup it runs when reconnecting,
 * as an unhandled rejection. Both concern a connection that is already closed and whose queries
 * were already rejected, so the process logs them and goes on: a PostgreSQL outage must not kill
 * a worker (and lose its unflushed records). Anything else is a bug: logged as fatal, then exit
 * code 1, as Node would do without these handlers.
 */
export function survivePostgresConnectionErrors(logger: Logger): void {
  const onStray = (kind: string) => (error: unknown) => {
    if (isPostgresConnectionDebris(error)) {
      logger.warn({ err: error, kind }, 'ignored an error from a dropped PostgreSQL connection');
      return;
    }
    logger.fatal({ err: error, kind }, 'unexpected error; exiting');
    process.exit(1);
  };
  process.on('uncaughtException', onStray('uncaughtException'));
  process.on('unhandledRejection', onStray('unhandledRejection'));
}

/** A socket-level error (what a dropped connection leaves), or an error thrown inside postgres.js's connection code. */
export function isPostgresConnectionDebris(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as NodeJS.ErrnoException;
  const fromConnectionCode = /[/\\]postgres[/\\]src[/\\]connection\.js/.test(error.stack ?? '');
  // A socket error reaches us only through a postgres.js query it failed: postgres.js's
  // queryError() gives the error a `query` property and appends the query's origin to its stack.
  // The same error code from any other socket (an HTTP attempt, Redis) is a bug to surface.
  const throughPostgres = 'query' in error || fromConnectionCode;
  if (
    syscall !== undefined &&
    throughPostgres &&
    ['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT'].includes(code ?? '')
  )
    return true;
  // The socket closing cleanly (the server ended the session) under the array-type lookup
  // postgres.js runs on each new connection: connection.js starts that query without awaiting it,
  // so its CONNECTION_CLOSED rejection escapes (seen once in test/faults/postgres.outage.test.ts).
  if (code === 'CONNECTION_CLOSED' && fromConnectionCode) return true;
  // The server ending the session (pg_terminate_backend, shutdown, restart) while postgres.js runs
  // its own set-up queries on a new connection: nobody awaits those, so the rejection escapes.
  if (error.name === 'PostgresError' && SESSION_ENDED_CODES.has(code ?? '') && fromConnectionCode) {
    return true;
  }
  return error instanceof TypeError && fromConnectionCode;
}

/** admin_shutdown, crash_shutdown, cannot_connect_now (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const SESSION_ENDED_CODES = new Set(['57P01', '57P02', '57P03']);
