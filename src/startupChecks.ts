/**
 * Checks run before a long-lived process starts its parts: is Redis answering, is PostgreSQL,
 * is the API port free, can the data directory be written. Each is bounded by a deadline and
 * fails with a HookfleetError whose message is one line naming the thing and how to fix it, so
 * a first run on a bare machine says "Redis at … is not answering" instead of retrying (and
 * logging) forever. The checks say nothing about later outages; the parts handle those.
 */
import { once } from 'node:events';
import { constants } from 'node:fs';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import { withDeadline } from './deadline.js';
import { HookfleetError } from './errors.js';
import { displayUrl } from './logger.js';
import {
  createProbeRedis,
  describeRedisTarget,
  redisTargetVariable,
  type RedisTarget,
} from './redis.js';

/** How long each check may take. A local service answers in milliseconds; a remote one within 1 s. */
export const STARTUP_CHECK_MS = 3000;

/** The code a failed check throws with (exit code 1). */
export const DEPENDENCY_UNAVAILABLE = 'dependency_unavailable';

function unavailable(message: string): HookfleetError {
  return new HookfleetError(DEPENDENCY_UNAVAILABLE, message, 503);
}

/** The most telling short name of a connection failure: its code (ECONNREFUSED), else its message. */
export function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code } = error as NodeJS.ErrnoException;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return code;
  return error.message || error.name;
}

/**
 * Resolves once a fresh connection to `target` answers PING (on a cluster: once the cluster
 * client has read the slot map and a node answers); throws a one-line error otherwise.
 */
export async function checkRedis(target: RedisTarget, timeoutMs = STARTUP_CHECK_MS): Promise<void> {
  const redis = createProbeRedis(target, timeoutMs);
  // With retries off, connect() rejects with "Connection is closed."; the socket's own error
  // (ECONNREFUSED, ENOTFOUND) came first, as an 'error' event. Listening also stops ioredis
  // printing it as an unhandled error event.
  let socketError: unknown;
  redis.on('error', (error: unknown) => {
    socketError ??= error;
  });
  try {
    await withDeadline(
      redis.connect().then(() => redis.ping()),
      timeoutMs,
      `no answer within ${timeoutMs} ms`,
    );
  } catch (error) {
    const reason = reasonOf(socketError ?? error);
    const where = describeRedisTarget(target);
    const variable = redisTargetVariable(target);
    if (/NOAUTH|WRONGPASS|NOPERM/.test(reason)) {
      throw unavailable(
        `${where} refused the connection (${reason.split(' ')[0]}). Check the user and password in ${variable}.`,
      );
    }
    throw unavailable(
      `${where} is not answering (${reason}). Start Redis, or set ${variable} to one that runs.`,
    );
  } finally {
    redis.disconnect();
  }
}

/**
 * Resolves once a fresh connection to `databaseUrl` answers `select 1`; throws a one-line error
 * otherwise. `variable` names the setting to fix (the embedded server has none).
 */
export async function checkPostgres(
  databaseUrl: string,
  timeoutMs = STARTUP_CHECK_MS,
  fix = 'Start PostgreSQL, or set DATABASE_URL to one that runs.',
): Promise<void> {
  const sql = postgres(databaseUrl, {
    max: 1,
    connect_timeout: Math.ceil(timeoutMs / 1000),
    onnotice: () => {},
  });
  try {
    await withDeadline(sql`select 1`, timeoutMs, `no answer within ${timeoutMs} ms`);
  } catch (error) {
    const where = `PostgreSQL at ${displayUrl(databaseUrl)}`;
    if (error instanceof Error && error.name === 'PostgresError') {
      throw unavailable(
        `${where} refused the connection: ${error.message}. Check the user, password and database in DATABASE_URL.`,
      );
    }
    throw unavailable(`${where} is not answering (${reasonOf(error)}). ${fix}`);
  } finally {
    await sql.end({ timeout: 0 }).catch(() => {});
  }
}

/**
 * Resolves when nothing listens on `port` (tried the way the server will listen: on every
 * interface unless `host` is given), or rejects with a one-line error built by `describe`.
 */
export async function checkPortFree(
  port: number,
  describe: (code: string) => string,
  host?: string,
): Promise<void> {
  const server = createServer();
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (error) {
    throw unavailable(describe(reasonOf(error)));
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function apiPortMessage(port: number, code: string): string {
  return `port ${port} for the API is not available (${code}). Stop what listens there, or set PORT to a free port.`;
}

/** The API port's check: the message names PORT. */
export function checkApiPort(port: number): Promise<void> {
  return checkPortFree(port, (code) => apiPortMessage(port, code));
}

/** Creates `dataDir` if needed and proves a file can be written there; throws a one-line error otherwise. */
export async function checkDataDirWritable(dataDir: string): Promise<void> {
  const root = path.resolve(dataDir);
  const probe = path.join(root, `.write-check-${process.pid}`);
  try {
    await mkdir(root, { recursive: true });
    await access(root, constants.W_OK);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (error) {
    throw unavailable(
      `data directory ${root} is not writable (${reasonOf(error)}). Set HOOKFLEET_DATA_DIR to a folder you can write to, or set DATABASE_URL to use a PostgreSQL of yours.`,
    );
  }
}

/**
 * Runs checks side by side (each is bounded) and throws the failure of the first one in the
 * list that failed, so the one line printed is the same from run to run.
 */
export async function firstFailure(checks: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(checks)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** A listen failure of the API server (the port taken after the check) as the check's error. */
export function listenError(error: unknown, port: number): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return error;
  return unavailable(apiPortMessage(port, code));
}
