import { freePort } from './freePort.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface RedisServer {
  port: number;
  url: string;
  /** Where the append-only file lives; the same on every start. */
  dir: string;
  /** True while a redis-server process runs. */
  readonly running: boolean;
  /**
   * Stops the server: 'shutdown' (SHUTDOWN: the AOF is fsynced first), 'sigterm' (the same, by
   * signal) or 'sigkill' (a crash: up to the last second of writes may be lost with everysec).
   */
  stop(how?: 'shutdown' | 'sigterm' | 'sigkill'): Promise<void>;
  /** Starts it again on the same port and directory, loading the AOF; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills the server and deletes its directory. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * A redis-server of the test's own (so it can be stopped without disturbing other test files),
 * persisting with AOF `appendfsync everysec` as production is advised to, snapshots off.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'hookfleet-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> | undefined;

  async function start(): Promise<void> {
    if (child) throw new Error('redis-server is already running');
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--loglevel',
        'notice',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child = proc;
    exited = once(proc, 'exit');
    const output: string[] = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: proc.stdout }).on('line', (line) => {
        output.push(line);
        if (line.includes('Ready to accept connections')) resolve();
      });
      void exited!.then(() =>
        reject(new Error(`redis-server exited before it was ready:\n${output.join('\n')}`)),
      );
    });
  }

  async function stop(how: 'shutdown' | 'sigterm' | 'sigkill' = 'shutdown'): Promise<void> {
    const proc = child;
    if (!proc) return;
    if (how === 'shutdown') {
      // redis-cli rather than a client of ours: SHUTDOWN closes the connection instead of answering.
      const cli = spawn('redis-cli', ['-p', String(port), 'shutdown'], { stdio: 'ignore' });
      await once(cli, 'exit');
    } else {
      proc.kill(how === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
    }
    await exited;
    child = undefined;
  }

  await start();
  let closed = false;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get running() {
      return child !== undefined;
    },
    stop,
    start,
    async close() {
      if (closed) return;
      closed = true;
      await stop('sigkill');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
