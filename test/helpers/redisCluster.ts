/**
 * A Redis Cluster of the test file's own: 3 masters and 3 replicas, each a `redis-server
 * --cluster-enabled yes` on free ports (client and cluster bus), persistence off, joined by
 * `redis-cli --cluster create … --cluster-replicas 1`. A short node timeout (1 s) makes a
 * failover take a couple of seconds, not the default 15+.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './freePort.js';

export interface ClusterNode {
  port: number;
  /** Whether its process runs. */
  readonly running: boolean;
  /** SIGKILL: a crash, as far as the cluster can tell. */
  kill(): Promise<void>;
}

export interface RedisCluster {
  nodes: readonly ClusterNode[];
  /** `host:port,…` of every node, for REDIS_CLUSTER_NODES. */
  seeds: string;
  /** Port of the master now serving `key`'s slot. */
  masterPortOf(key: string): Promise<number>;
  /** Ports of the masters now in the cluster (that answer). */
  masterPorts(): Promise<number[]>;
  /**
   * Resolves once every running node reports cluster_state:ok and sees the same masters, none of
   * them `without` (a killed master: its replica has taken over).
   */
  waitUntilOk(options?: { without?: number; timeoutMs?: number }): Promise<void>;
  /** Deletes every key starting with `prefix:` on every master. */
  deleteKeys(prefix: string): Promise<void>;
  /** Kills every node and deletes their directories. Safe to call twice. */
  close(): Promise<void>;
}

const NODE_TIMEOUT_MS = 1000;

async function startNode(dir: string): Promise<{ node: ClusterNode; stop: () => Promise<void> }> {
  const port = await freePort();
  const busPort = await freePort();
  const proc: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--cluster-port',
      String(busPort),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
      '--cluster-node-timeout',
      String(NODE_TIMEOUT_MS),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  const exited = once(proc, 'exit');
  let running = true;
  void exited.then(() => (running = false));
  const ready = waitFor(async () => {
    const redis = new Redis(port, { lazyConnect: true, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      return (await redis.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      redis.disconnect();
    }
  }, 10_000);
  // A node that never answers (its port taken meanwhile) is not left running.
  await ready.catch(async (error: unknown) => {
    proc.kill('SIGKILL');
    await exited;
    throw error;
  });
  const kill = async () => {
    if (!running) return;
    proc.kill('SIGKILL');
    await exited;
  };
  return {
    node: {
      port,
      get running() {
        return running;
      },
      kill,
    },
    stop: kill,
  };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function onNode<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(port, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

/** Masters seen by a node: `port` of each master not flagged failed. */
async function mastersSeenBy(port: number): Promise<number[]> {
  const text = (await onNode(port, (r) => r.call('CLUSTER', 'NODES'))) as string;
  return text
    .split('\n')
    .filter((line) => / master /.test(` ${line.split(' ')[2]?.replace(/,/g, ' ')} `))
    .filter((line) => !/fail/.test(line.split(' ')[2] ?? ''))
    .filter((line) => (line.split(' ')[8] ?? '') !== '') // serves slots
    .map((line) => Number(/:(\d+)@/.exec(line)![1]))
    .sort((a, b) => a - b);
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'hookfleet-cluster-'));
  const started = await Promise.all(Array.from({ length: 6 }, () => startNode(dir)));
  const nodes = started.map((s) => s.node);
  const create = spawn(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  create.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  create.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(create, 'exit')) as [number];
  if (code !== 0) throw new Error(`redis-cli --cluster create failed:\n${output}`);

  const running = () => nodes.filter((n) => n.running);
  const cluster: RedisCluster = {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    async masterPortOf(key) {
      const slot = (await onNode(running()[0]!.port, (r) =>
        r.call('CLUSTER', 'KEYSLOT', key),
      )) as number;
      const slots = (await onNode(running()[0]!.port, (r) => r.call('CLUSTER', 'SLOTS'))) as [
        number,
        number,
        [string, number],
      ][];
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      return range![2][1];
    },
    async masterPorts() {
      return mastersSeenBy(running()[0]!.port);
    },
    async waitUntilOk({ without, timeoutMs = 20_000 } = {}) {
      await waitFor(async () => {
        try {
          const views = await Promise.all(
            running().map(async (n) => {
              const info = (await onNode(n.port, (r) => r.call('CLUSTER', 'INFO'))) as string;
              if (!info.includes('cluster_state:ok')) return undefined;
              const masters = await mastersSeenBy(n.port);
              if (without !== undefined && masters.includes(without)) return undefined;
              return masters.join(',');
            }),
          );
          return views.every((v) => v !== undefined && v === views[0]) && views[0] !== '';
        } catch {
          return false;
        }
      }, timeoutMs);
    },
    async deleteKeys(prefix) {
      for (const port of await mastersSeenBy(running()[0]!.port)) {
        await onNode(port, async (redis) => {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
            cursor = next;
            for (const key of keys) {
              // A node that stopped owning the key's slot since CLUSTER NODES was read (a
              // failover in the test before) answers MOVED: the key's owner is scanned too.
              await redis.del(key).catch((error: unknown) => {
                if (!(error instanceof Error && error.message.startsWith('MOVED'))) throw error;
              });
            }
          } while (cursor !== '0');
        });
      }
    },
    async close() {
      await Promise.all(started.map((s) => s.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  await cluster.waitUntilOk();
  return cluster;
}

/** A cluster client for assertions (not the fleet's). */
export function clusterClient(cluster: RedisCluster): Cluster {
  return new Cluster(
    cluster.nodes.filter((n) => n.running).map((n) => ({ host: '127.0.0.1', port: n.port })),
  );
}
