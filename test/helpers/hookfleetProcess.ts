import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface HookfleetProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first. */
  waitForLine(pattern: RegExp): Promise<string>;
  /** Resolves with the exit code (null when killed by a signal) and how long after `since` it came. */
  exited: Promise<{ code: number | null; atMs: number }>;
  /** Kills the process if it still runs (SIGKILL unless told); resolves once it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs a long-lived `hookfleet <command>` (through tsx, from src) as a real child process with
 * exactly `env` on top of PATH and HOME, and collects its output line by line.
 */
export function spawnHookfleet(args: string[], env: Record<string, string>): HookfleetProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOOKFLEET_LOG_FORMAT: 'json',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const watchers: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout.push(line);
    for (const watcher of watchers.filter((w) => w.pattern.test(line))) {
      watchers.splice(watchers.indexOf(watcher), 1);
      watcher.resolve(line);
    }
  });
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exit = once(child, 'exit');
  const exited = exit.then(([code]) => ({ code: code as number | null, atMs: performance.now() }));
  return {
    child,
    stdout,
    stderr,
    exited,
    waitForLine(pattern) {
      const found = stdout.find((line) => pattern.test(line));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        watchers.push({ pattern, resolve });
        void exited.then(({ code }) =>
          reject(
            new Error(
              `hookfleet ${args.join(' ')} exited (${String(code)}) before printing ${String(pattern)}:\n${[...stdout, ...stderr].join('\n')}`,
            ),
          ),
        );
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
