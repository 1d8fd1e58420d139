/** A benchmark run's own database and Redis key prefixes, removed when the run ends. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import postgres from 'postgres';

/** Where a benchmark finds Redis and a PostgreSQL role that may create databases. */
export interface BenchServers {
  /** Default redis://127.0.0.1:6379. */
  redisUrl?: string | undefined;
  /** Default postgres://root@127.0.0.1:5432/postgres. */
  adminUrl?: string | undefined;
}

export interface BenchScratch {
  /** Names this run's prefixes (`hfbench-<runId>-…`) and database. */
  runId: string;
  /** The Redis the run uses (BenchServers' default filled in). */
  redisUrl: string;
  dbName: string;
  dbUrl: string;
  /** A connection to the server's admin database, e.g. for reading PostgreSQL's CPU time. */
  admin: postgres.Sql;
  /** Deletes every key under `prefixes` and drops the database. */
  remove(prefixes: readonly string[]): Promise<void>;
}

export async function createBenchScratch(servers: BenchServers = {}): Promise<BenchScratch> {
  const redisUrl = servers.redisUrl ?? 'redis://127.0.0.1:6379';
  const adminUrl = servers.adminUrl ?? 'postgres://root@127.0.0.1:5432/postgres';
  const runId = randomBytes(4).toString('hex');
  const dbName = `hookfleet_bench_${runId}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${dbName}"`);
  const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
  return {
    runId,
    redisUrl,
    dbName,
    dbUrl,
    admin,
    async remove(prefixes) {
      const redis = new Redis(redisUrl);
      for (const prefix of prefixes) {
        const keys = await redis.keys(`${prefix}:*`);
        for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
      }
      await redis.quit();
      await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
      await admin.end();
    },
  };
}
