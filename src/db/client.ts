import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema.js';

export type Database = PostgresJsDatabase<typeof schema>;

export interface DbClient {
  db: Database;
  /** The raw postgres.js client, for the few statements Drizzle cannot express (bulk UPDATE … FROM VALUES). */
  sql: postgres.Sql;
  /** The connection string, for a connection of its own (the workers' LISTEN, worker/endpointChanges.ts). */
  url: string;
  close(): Promise<void>;
}

export interface DbClientOptions {
  /** Pool size. Default 10. */
  max?: number;
}

export function createDbClient(databaseUrl: string, options: DbClientOptions = {}): DbClient {
  const sql = postgres(databaseUrl, {
    max: options.max ?? 10,
    onnotice: () => {},
    // Reconnect within 2 s at most (postgres.js backs off up to 20 s by default), so workers
    // resume writing soon after an outage ends.
    backoff: (attempt: number) => Math.min(0.1 * 2 ** attempt, 2),
    transform: { undefined: null },
  });
  return {
    db: drizzle(sql, { schema }),
    sql,
    url: databaseUrl,
    close: () => sql.end({ timeout: 5 }),
  };
}

/** Resolves once PostgreSQL answers a trivial statement (the /healthz probe); rejects if it cannot. */
export async function pingDatabase(sql: postgres.Sql): Promise<void> {
  await sql`select 1`;
}

/**
 * A PostgreSQL array literal (`{"a","b",NULL}`) to pass as one text parameter and cast in SQL
 * (`${pgArray(ids)}::text[]`). postgres.js's own sql.array() depends on array types it fetches
 * when its first connection opens; queries sent before that finished went out as "a,b" and failed
 * with "malformed array literal" (seen under load right after start-up). Quoting every element
 * makes the literal valid for text, int and timestamptz arrays alike.
 */
export function pgArray(values: readonly (string | number | null)[]): string {
  const quote = (value: string | number | null) =>
    value === null ? 'NULL' : `"${String(value).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return `{${values.map(quote).join(',')}}`;
}
