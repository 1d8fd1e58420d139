/**
 * Stale-sweep benchmark: `npx tsx bench/sweep.ts [--endpoints 1000000]
 * [--attempts 200000] [--messages 1000000] [--batch-size 5000]`.
 *
 * Creates a database of its own (migrated with runMigrations), bulk-loads endpoints with
 * generate_series (10% stale, 1% inside the warning window, 1% with a 90-day threshold of their
 * own, some never succeeded), attempt history (half past retention) and messages (all but a tenth
 * past retention), shows the plan of a sweep batch (it must use endpoints_stale_clock_active_idx),
 * runs one sweep, checks it deactivated exactly the stale endpoints and pruned exactly the old
 * messages, and drops the database.
 *
 * Goal on a 2-core machine with 1,000,000 endpoints: deactivating and warning under 10 s, and no
 * statement over 1 s, pruning 1,000,000 old messages included.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { createDbClient } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import { explainStaleBatch } from '../src/db/staleEndpoints.js';
import { DEFAULT_SWEEP_BATCH_SIZE, sweepStaleEndpoints } from '../src/worker/staleSweep.js';

export interface SweepBenchOptions {
  /** Endpoints to load. Default 1,000,000. */
  endpoints?: number;
  /** Attempt rows to load, half of them older than the retention. Default 200,000. */
  attempts?: number;
  /** Messages past their retention to load (and a tenth as many newer ones). Default 1,000,000. */
  messages?: number;
  /** Rows per sweep statement. Default DEFAULT_SWEEP_BATCH_SIZE (5000). */
  batchSize?: number;
  /** A PostgreSQL URL with rights to create databases. Default postgres://root@127.0.0.1:5432/postgres. */
  adminUrl?: string;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface SweepBenchResult {
  endpoints: number;
  expectedStale: number;
  deactivated: number;
  warned: number;
  attemptsPruned: number;
  messagesPruned: number;
  expectedMessagesPruned: number;
  loadMs: number;
  /** The sweep, end to end. */
  totalMs: number;
  /** The sweep's phases. */
  phasesMs: { deactivate: number; warn: number; prune: number };
  longestStatementMs: number;
  statements: number;
  /** EXPLAIN of one default-scan batch. */
  plan: string[];
  usesStaleClockIndex: boolean;
  /** EXPLAIN of one custom-threshold batch. */
  customPlan: string[];
  usesStaleAfterDaysIndex: boolean;
  /** Deactivating and warning under 10 s, and no statement over 1 s. */
  goalMet: boolean;
}

const DEFAULT_ADMIN_URL = 'postgres://root@127.0.0.1:5432/postgres';
const STALE_AFTER_DAYS = 365;

export async function runSweepBench(options: SweepBenchOptions = {}): Promise<SweepBenchResult> {
  const endpointCount = options.endpoints ?? 1_000_000;
  const attemptCount = options.attempts ?? 200_000;
  const messageCount = options.messages ?? 1_000_000;
  const batchSize = options.batchSize ?? DEFAULT_SWEEP_BATCH_SIZE;
  const log = options.log ?? (() => {});
  const adminUrl = options.adminUrl ?? DEFAULT_ADMIN_URL;
  const name = `hookfleet_bench_${randomBytes(5).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;

  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const dbClient = createDbClient(url.toString(), { max: 4 });
  try {
    await runMigrations(url.toString());
    log(
      `loading ${endpointCount} endpoints, ${attemptCount} attempts and ${messageCount} old messages into ${name} …`,
    );
    const loadStartedMs = performance.now();
    await load(dbClient.sql, endpointCount, attemptCount, messageCount);
    const loadMs = performance.now() - loadStartedMs;
    log(`loaded in ${(loadMs / 1000).toFixed(1)} s`);

    const [expected] = await dbClient.sql<{ n: number }[]>`
      select count(*)::int as n from endpoints
      where active and greatest(last_success_at, reactivated_at, created_at)
        < now() - coalesce(stale_after_days, ${STALE_AFTER_DAYS}::int) * interval '24 hours'`;
    const config = loadConfig({
      DATABASE_URL: url.toString(),
      HOOKFLEET_STALE_AFTER_DAYS: String(STALE_AFTER_DAYS),
      LOG_LEVEL: 'silent',
    });
    const rule = {
      now: new Date(),
      defaultDays: STALE_AFTER_DAYS,
      warningDays: config.staleWarningDays,
    };
    const plan = await explainStaleBatch(dbClient.sql, rule, batchSize);
    log(`plan of one batch:\n  ${plan.join('\n  ')}`);
    const customPlan = await explainStaleBatch(dbClient.sql, rule, batchSize, 'custom');
    log(`plan of one batch of shorter thresholds:\n  ${customPlan.join('\n  ')}`);

    const result = await sweepStaleEndpoints(
      { config, logger: pino({ level: 'silent' }), dbClient },
      { batchSize },
    );
    const bench: SweepBenchResult = {
      endpoints: endpointCount,
      expectedStale: expected?.n ?? 0,
      deactivated: result.deactivated,
      warned: result.warned,
      attemptsPruned: result.attemptsPruned,
      messagesPruned: result.messagesPruned,
      expectedMessagesPruned: messageCount,
      loadMs,
      totalMs: result.durationMs.total,
      phasesMs: {
        deactivate: result.durationMs.deactivate,
        warn: result.durationMs.warn,
        prune: result.durationMs.prune,
      },
      longestStatementMs: result.longestStatementMs,
      statements: result.statements,
      plan,
      usesStaleClockIndex: plan.some((line) => line.includes('endpoints_stale_clock_active_idx')),
      customPlan,
      usesStaleAfterDaysIndex: customPlan.some((line) =>
        line.includes('endpoints_stale_after_days_active_idx'),
      ),
      goalMet:
        result.durationMs.deactivate + result.durationMs.warn < 10_000 &&
        result.longestStatementMs < 1_000,
    };
    if (bench.deactivated !== bench.expectedStale) {
      throw new Error(
        `sweep deactivated ${bench.deactivated} endpoints, expected ${bench.expectedStale}`,
      );
    }
    if (bench.messagesPruned !== bench.expectedMessagesPruned) {
      throw new Error(
        `sweep pruned ${bench.messagesPruned} messages, expected ${bench.expectedMessagesPruned}`,
      );
    }
    return bench;
  } finally {
    await dbClient.close();
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
}

/**
 * Bulk load in a few set-based statements. The secondary indexes are dropped for the load and
 * rebuilt from their own definitions (pg_indexes), which is much faster than maintaining them
 * row by row and cannot drift from the migrations.
 */
async function load(
  sql: postgres.Sql,
  endpoints: number,
  attempts: number,
  messages: number,
): Promise<void> {
  const indexes = await sql<{ indexname: string; indexdef: string }[]>`
    select indexname, indexdef from pg_indexes
    where schemaname = current_schema() and tablename in ('endpoints', 'attempts', 'messages')
      and indexname not like '%_pkey'`;
  for (const { indexname } of indexes) await sql.unsafe(`drop index "${indexname}"`);
  // g % 10 = 0: stale (366-700 days since the last success, or created that long ago and never
  // succeeded); g % 100 = 1: inside the 30-day warning window; g % 100 = 7: a 90-day threshold of
  // its own; g % 1000 = 10: stale but re-enabled 10 days ago (read by the scan, not deactivated);
  // everything else succeeded within 300 days. Seconds are spread so clocks differ.
  await sql`
    insert into endpoints (id, url, secret, event_types, created_at, last_success_at, reactivated_at, stale_after_days)
    select 'ep_bench' || lpad(g::text, 10, '0'),
           'https://receiver-' || (g % 5000) || '.example.com/hooks/' || g,
           'whsec_' || encode(sha256(g::text::bytea), 'base64'),
           case when g % 3 = 0 then '{}'::text[] else array['order.created', 'order.paid'] end,
           clock - interval '30 days',
           case when g % 10 = 0 and g % 20 = 0 then null else clock end,
           case when g % 1000 = 10 then now() - interval '10 days' end,
           case when g % 100 = 7 then 90 end
    from (
      select g, now() - (case
          when g % 10 = 0 then 366 + g % 335
          when g % 100 = 1 then 336 + g % 28
          else g % 300 end) * interval '1 day' - (g % 86400) * interval '1 second' as clock
      from generate_series(1, ${endpoints}::int) g
    ) s`;
  await sql`
    insert into attempts (message_id, endpoint_id, attempt_number, attempted_at, outcome, status_code, duration_ms)
    select 'msg_bench' || g, 'ep_bench' || lpad((1 + g % ${endpoints}::int)::text, 10, '0'), 1,
           now() - (g % 60) * interval '1 day' - (g % 86400) * interval '1 second', 'succeeded', 204, 20
    from generate_series(1, ${attempts}::int) g`;
  // Messages 31-90 days old (past the default 30-day retention), then a tenth as many from the
  // last 29 days, which the sweep must keep.
  await sql`
    insert into messages (id, event_type, payload, endpoint_ids, created_at, enqueued_at)
    select 'msg_bench' || g, 'order.paid', jsonb_build_object('order', g, 'total', g % 1000),
           array['ep_bench' || lpad((1 + g % ${endpoints}::int)::text, 10, '0')], t, t
    from (
      select g, case when g <= ${messages}::int
          then now() - interval '31 days' - (g % 60) * interval '1 day' - (g % 86400) * interval '1 second'
          else now() - (g % 29) * interval '1 day' end as t
      from generate_series(1, ${messages + Math.floor(messages / 10)}::int) g
    ) s`;
  for (const { indexdef } of indexes) await sql.unsafe(indexdef);
  await sql`vacuum analyze endpoints`;
  await sql`vacuum analyze attempts`;
  await sql`vacuum analyze messages`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      endpoints: { type: 'string' },
      attempts: { type: 'string' },
      messages: { type: 'string' },
      'batch-size': { type: 'string' },
    },
  });
  const result = await runSweepBench({
    ...(values.endpoints !== undefined && { endpoints: Number(values.endpoints) }),
    ...(values.attempts !== undefined && { attempts: Number(values.attempts) }),
    ...(values.messages !== undefined && { messages: Number(values.messages) }),
    ...(values['batch-size'] !== undefined && { batchSize: Number(values['batch-size']) }),
    adminUrl: process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? DEFAULT_ADMIN_URL,
    log: (line) => console.log(line),
  });
  console.log(
    [
      `endpoints:          ${result.endpoints}`,
      `deactivated:        ${result.deactivated} (expected ${result.expectedStale})`,
      `warned:             ${result.warned}`,
      `attempts pruned:    ${result.attemptsPruned}`,
      `messages pruned:    ${result.messagesPruned} (expected ${result.expectedMessagesPruned})`,
      `uses clock index:   ${result.usesStaleClockIndex ? 'yes' : 'NO'}`,
      `uses days index:    ${result.usesStaleAfterDaysIndex ? 'yes' : 'NO'}`,
      `sweep total:        ${(result.totalMs / 1000).toFixed(2)} s (${result.statements} statements)`,
      `phases:             deactivate ${ms(result.phasesMs.deactivate)}, warn ${ms(result.phasesMs.warn)}, prune ${ms(result.phasesMs.prune)}`,
      `longest statement:  ${result.longestStatementMs.toFixed(0)} ms`,
      `goal (<10 s, <1 s): ${result.goalMet ? 'met' : 'MISSED'} (deactivate + warn < 10 s, every statement < 1 s)`,
    ].join('\n'),
  );
  if (!result.goalMet || !result.usesStaleClockIndex) process.exitCode = 1;
}

function ms(value: number): string {
  return `${(value / 1000).toFixed(2)} s`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
