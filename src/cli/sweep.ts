import { closeShardedQueue, openShardedQueue, shardCount } from '../queueShards.js';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { createOperatorEvents } from '../delivery/operatorEvents.js';
import { MESSAGES_QUEUE } from '../jobs.js';
import { chooseQueueBackend, createQueueBackend } from '../queueBackend.js';
import { createDbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import {
  DEFAULT_SWEEP_BATCH_SIZE,
  sweepStaleEndpoints,
  type SweepPhase,
  type SweepResult,
} from '../worker/staleSweep.js';
import { createStaleProbes } from '../worker/staleProbes.js';
import { parseCommandArgs } from './args.js';
import { createProgressBar } from './progress.js';

const HELP = `Usage: hookfleet sweep [--dry-run] [--json]

Runs the stale-endpoint sweep once, now, and exits. It deactivates active endpoints whose last
success (or reactivation, or creation) is older than their threshold (their own staleAfterDays,
else HOOKFLEET_STALE_AFTER_DAYS); one that got no deliveries in that time is first sent a signed
hookfleet.ping and deactivated only if it fails or goes unanswered for
HOOKFLEET_STALE_PROBE_GRACE_HOURS. It reports endpoints within HOOKFLEET_STALE_WARNING_DAYS of it
once as endpoint.stale_warning, disables endpoints failing with no success for longer than
their failingDisableAfterHours (else HOOKFLEET_FAILING_DISABLE_AFTER_HOURS; warned at half of
it as endpoint.failing_warning), and deletes attempt history older than
HOOKFLEET_ATTEMPT_RETENTION_DAYS. Workers run the same sweep on HOOKFLEET_SWEEP_CRON; running
both at once is safe.

Options:
  --dry-run   change nothing: print how many endpoints would be deactivated or probed,
              and a sample
  --json      print the result as JSON on stdout
  -h, --help  show this help

Environment: DATABASE_URL (else the embedded PostgreSQL of 'hookfleet start', under
HOOKFLEET_DATA_DIR), HOOKFLEET_STALE_AFTER_DAYS, HOOKFLEET_STALE_WARNING_DAYS,
HOOKFLEET_FAILING_DISABLE_AFTER_HOURS, HOOKFLEET_STALE_PROBE_GRACE_HOURS,
HOOKFLEET_ATTEMPT_RETENTION_DAYS, HOOKFLEET_OPERATOR_WEBHOOK_URL and
HOOKFLEET_OPERATOR_WEBHOOK_SECRET, REDIS_URL (operational events and pings are queued there for
the workers to deliver), LOG_LEVEL (logs go to stderr).`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('sweep', argv, {
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig();
  const databaseUrl = await resolveDatabaseUrl(config);
  const dbClient = createDbClient(databaseUrl, { max: 2 });
  const progress = createProgressReporter(process.stderr, DEFAULT_SWEEP_BATCH_SIZE);
  // Logs on stderr keep stdout for the result (--json); each line first clears the progress bar.
  const logger = pino(
    { name: 'hookfleet-sweep', level: config.logLevel },
    {
      write: (line: string) => {
        progress.clear();
        process.stderr.write(line);
      },
    },
  );
  const dryRun = values['dry-run'] ?? false;
  // Operational events and the pings to idle stale endpoints are messages the workers deliver;
  // a dry run queues nothing, so it opens no queue (and still counts the pings, probe: true).
  const backend = !dryRun
    ? createQueueBackend(config, await chooseQueueBackend(config), { databaseUrl, logger })
    : undefined;
  // Each message goes to its shard of `messages` (queueShards.ts).
  const queue =
    backend &&
    openShardedQueue(backend, config, MESSAGES_QUEUE, shardCount(backend, config), 'queues');
  const events =
    queue &&
    config.operatorWebhookUrl !== undefined &&
    createOperatorEvents({ sql: dbClient.sql, queue, config, logger });
  const probes = queue && createStaleProbes({ sql: dbClient.sql, queue, logger });
  try {
    const result = await sweepStaleEndpoints(
      { config, logger, dbClient, events: events || undefined, probes },
      { dryRun, probe: true, ...(!dryRun && { onProgress: progress.update }) },
    );
    progress.clear();
    console.log(
      values.json ? JSON.stringify(result, null, 2) : formatResult(result, config.staleAfterDays),
    );
    return 0;
  } finally {
    progress.clear();
    if (queue) await closeShardedQueue(queue);
    await backend?.close();
    await dbClient.close();
  }
}

/** The human-readable report. */
export function formatResult(result: SweepResult, staleAfterDays: number): string {
  const took = `${(result.durationMs.total / 1000).toFixed(1)} s, longest statement ${Math.round(result.longestStatementMs)} ms`;
  if (!result.dryRun) {
    const failed =
      result.eventsFailed > 0
        ? ` ${result.eventsFailed} batches of operational events could not be queued (see the log).`
        : '';
    return `Deactivated ${result.deactivated} stale endpoints, probed ${result.probed} idle ones, warned ${result.warned}, disabled ${result.failingDisabled} failing endpoints, warned ${result.failingWarned}, pruned ${result.attemptsPruned} attempt rows and ${result.messagesPruned} messages (${took}).${failed}`;
  }
  const lines = [
    `Dry run, nothing changed: ${result.deactivated} endpoints would be deactivated (default threshold ${staleAfterDays} days), ` +
      `${result.probed} idle ones probed first, ${result.warned} warned, ${result.failingDisabled} failing endpoints would be disabled and ${result.failingWarned} warned, ${result.attemptsPruned} attempt rows and ${result.messagesPruned} messages pruned (${took}).`,
  ];
  if (result.sample.length > 0) {
    const rows = result.sample.map((row) => [
      row.id,
      row.url,
      row.lastSuccessAt?.toISOString() ?? 'never',
      String(row.staleAfterDays),
    ]);
    lines.push('', ...table(['ID', 'URL', 'LAST SUCCESS', 'STALE AFTER DAYS'], rows));
    const more = result.deactivated - result.sample.length;
    if (more > 0) lines.push(`… and ${more} more`);
  }
  return lines.join('\n');
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

interface ProgressReporter {
  update: (done: number, total: number, phase: SweepPhase) => void;
  /** Erases the bar (TTY) so other output starts on a clean line. */
  clear: () => void;
}

/** Without a TTY, at most one progress line per this many ms. */
const LINE_INTERVAL_MS = 5000;

/** Sweep progress on stderr (see progress.ts), only for work larger than one batch. */
export function createProgressReporter(
  stream: NodeJS.WriteStream,
  minTotal: number,
  nowMs: () => number = Date.now,
): ProgressReporter {
  const bar = createProgressBar(stream, { lineIntervalMs: LINE_INTERVAL_MS, nowMs });
  return {
    update: (done, total, phase) => {
      if (total <= minTotal) return;
      const label =
        phase === 'deactivate'
          ? 'deactivating'
          : phase === 'probe'
            ? 'probing idle endpoints'
            : phase === 'warn'
              ? 'warning'
              : phase === 'failing'
                ? 'disabling failing endpoints'
                : 'pruning attempts';
      const percent = Math.floor(Math.min(1, done / total) * 100);
      bar.draw(
        done,
        total,
        `${label} ${done}/${total}`,
        `hookfleet sweep: ${label} ${done}/${total} (${percent}%)`,
      );
    },
    clear: () => bar.clear(),
  };
}
