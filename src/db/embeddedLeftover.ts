/**
 * An embedded PostgreSQL left running by a `hookfleet start` that did not stop it (SIGKILL, a
 * crash, a power cut of the terminal only). Its server is a separate process that outlives ours
 * and keeps the data directory locked, so the next start would fail. PostgreSQL names it in
 * `postmaster.pid` (https://www.postgresql.org/docs/current/storage-file-layout.html): line 1 the
 * pid, line 2 the data directory, line 4 the port.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LeftoverPostmaster {
  pid: number;
  port: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process name, where /proc tells it (Linux); undefined elsewhere. */
async function processName(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/**
 * The running PostgreSQL server that holds `clusterDir`, if any: its lock file names this very
 * directory and its pid is a live `postgres` process (a stale lock file, whose pid died or was
 * reused by another program, is PostgreSQL's own business: it removes it on start).
 */
export async function findLeftoverPostmaster(
  clusterDir: string,
): Promise<LeftoverPostmaster | undefined> {
  let lines: string[];
  try {
    lines = (await readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !Number.isSafeInteger(port)) return undefined;
  if (path.resolve(lines[1] ?? '') !== path.resolve(clusterDir)) return undefined;
  if (!isAlive(pid)) return undefined;
  const name = await processName(pid);
  if (name !== undefined && name !== 'postgres') return undefined;
  return { pid, port };
}

/** Resolves true once `pid` has exited, false if it still runs after `timeoutMs`. */
async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= until) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Stops a PostgreSQL server that is not our child: SIGINT (fast shutdown: sessions are ended,
 * the data is checkpointed), then SIGQUIT (immediate shutdown: crash recovery on the next start,
 * nothing committed is lost) if it has not exited within `fastMs`.
 */
export async function stopPostmaster(pid: number, fastMs = 3000): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  signal('SIGINT');
  if (await waitForExit(pid, fastMs)) return;
  signal('SIGQUIT');
  if (await waitForExit(pid, 2000)) return;
  signal('SIGKILL');
  await waitForExit(pid, 1000);
}
