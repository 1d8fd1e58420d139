import { loadConfig, type Config } from '../config.js';
import { createDbClient, type DbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import { findEndpoint } from '../db/endpoints.js';
import {
  listFailedDeliveries,
  MAX_FAILED_DELIVERIES_LIMIT,
  type FailedDelivery,
} from '../db/failedDeliveries.js';
import { HookfleetError } from '../errors.js';
import { replayFailedDeliveries } from '../producer/replayFailed.js';
import { badArguments, parseCommandArgs, parseSince, parseWholeNumber } from './args.js';
import { openDeliveriesQueue } from './deliveriesQueue.js';
import { printTable, truncate } from './output.js';
import { createProgressBar } from './progress.js';
import { isOwnerId } from '../ids.js';

const HELP = `Usage: hookfleet failed <list|replay> [options]

A failed delivery is a message to an endpoint whose final attempt failed: the receiver refused
it for good (410, a refused address, a disabled endpoint) or the retry schedule ran out.

  list [--endpoint ID] [--owner O] [--since TIME] [--limit N]
      failed deliveries, newest first: every endpoint unless --endpoint (or --owner: the
      deliveries of owner O's messages), the whole attempt
      history kept (HOOKFLEET_ATTEMPT_RETENTION_DAYS) unless --since, the newest 100 unless
      --limit (at most ${MAX_FAILED_DELIVERIES_LIMIT})
  replay --endpoint ID [--since TIME]
      deliver again every delivery to the endpoint that failed since TIME (default: 24h, which
      covers an outage as long as the default retry schedule). Failed jobs are retried in
      place with the whole retry schedule, expired ones are sent as new jobs with the same
      webhook-id; deliveries already queued again are left alone. Shows progress on stderr.

TIME is an age (30m, 2h, 3d) or an ISO 8601 date or date-time with a zone (2024-05-01,
2024-05-01T12:00:00Z), never in the future.

Options: --json (machine-readable output on stdout, no progress), -h/--help.

Environment: DATABASE_URL (else the embedded PostgreSQL of 'hookfleet start', under
HOOKFLEET_DATA_DIR), REDIS_URL and HOOKFLEET_QUEUE_PREFIX (replay).`;

/** `failed list` shows this many rows unless --limit says otherwise. */
const DEFAULT_LIST_LIMIT = 100;
/** `failed replay` without --since. */
const DEFAULT_REPLAY_SINCE = '24h';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'failed',
    argv,
    {
      json: { type: 'boolean' },
      endpoint: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      owner: { type: 'string' },
    },
    true,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action === undefined) throw usage('expected an action: list, replay');
  if (action !== 'list' && action !== 'replay') throw usage(`unknown action '${action}'`);
  if (extra.length > 0) throw usage(`unexpected argument '${extra[0]}'`);
  const command = `failed ${action}`;
  const endpointId = values.endpoint;
  if (action === 'replay' && endpointId === undefined) {
    throw usage('replay: expected --endpoint <id> (replays one endpoint at a time)');
  }
  if (action === 'replay' && values.limit !== undefined) throw usage('replay: takes no --limit');
  const ownerId = values.owner;
  if (action === 'replay' && ownerId !== undefined) throw usage('replay: takes no --owner');
  if (ownerId !== undefined && !isOwnerId(ownerId)) {
    throw usage(`--owner takes 1 to 128 letters, digits and _ - . : @ (got '${ownerId}')`);
  }
  const since =
    values.since !== undefined || action === 'replay'
      ? parseSince(command, values.since ?? DEFAULT_REPLAY_SINCE)
      : undefined;
  const limit =
    values.limit === undefined
      ? DEFAULT_LIST_LIMIT
      : parseWholeNumber(command, '--limit', values.limit, 1, MAX_FAILED_DELIVERIES_LIMIT);
  const json = values.json ?? false;
  const config = loadConfig();
  const dbClient = createDbClient(await resolveDatabaseUrl(config), { max: 2 });
  try {
    if (endpointId !== undefined) await requireActive(dbClient, endpointId, action === 'replay');
    if (action === 'list') {
      const rows = await listFailedDeliveries(dbClient.db, {
        ...(endpointId !== undefined && { endpointId }),
        ...(ownerId !== undefined && { ownerId }),
        ...(since && { since }),
        limit,
      });
      printFailed(rows, json, limit);
      return 0;
    }
    return await replay(config, dbClient, { endpointId: endpointId!, since: since! }, json);
  } finally {
    await dbClient.close();
  }
}

async function replay(
  config: Config,
  dbClient: DbClient,
  { endpointId, since }: { endpointId: string; since: Date },
  json: boolean,
): Promise<number> {
  const deliveries = await openDeliveriesQueue(config, 'failed replay', dbClient.url);
  const bar = createProgressBar(process.stderr, { lineIntervalMs: 2000 });
  try {
    const result = await replayFailedDeliveries(
      { db: dbClient.db, queue: deliveries.queue },
      {
        endpointId,
        since,
        onProgress: (done, total) => {
          // A terminal gets a bar from 0%; a log gets lines once there is progress to report.
          if (json || total === 0 || (done === 0 && !process.stderr.isTTY)) return;
          bar.draw(done, total, `replayed ${done}/${total}`);
        },
      },
    );
    bar.clear();
    const window = `since ${since.toISOString()}`;
    if (json) {
      console.log(JSON.stringify({ endpointId, since: since.toISOString(), ...result }));
    } else if (result.total === 0) {
      console.log(`no failed deliveries to ${endpointId} ${window}`);
    } else {
      const gone = result.total - result.retried - result.enqueued - result.pending;
      console.log(
        `replayed ${result.total} failed deliveries to ${endpointId} ${window}: ` +
          `${result.retried} retried, ${result.enqueued} sent as new jobs, ` +
          `${result.pending} already queued again` +
          (gone > 0 ? `, ${gone} skipped (message gone)` : ''),
      );
    }
    return 0;
  } finally {
    bar.clear();
    await deliveries.close();
  }
}

/** Exit code 3 for an unknown endpoint; replaying to a disabled one would only fail again. */
async function requireActive(dbClient: DbClient, id: string, mustBeActive: boolean): Promise<void> {
  const row = await findEndpoint(dbClient.db, id);
  if (!row) throw new HookfleetError('not_found', `failed: no endpoint ${id}`, 404);
  if (mustBeActive && !row.active) {
    throw new HookfleetError(
      'endpoint_inactive',
      `failed replay: endpoint ${id} is disabled; enable it first ('hookfleet endpoints enable ${id}')`,
      409,
    );
  }
}

function printFailed(rows: FailedDelivery[], json: boolean, limit: number): void {
  if (json) {
    console.log(JSON.stringify(rows));
    return;
  }
  printTable(
    rows.map((row) => ({
      'failed at': row.failedAt.toISOString(),
      message: row.messageId,
      endpoint: row.endpointId,
      event: row.eventType,
      attempt: String(row.attemptNumber),
      status: row.statusCode === null ? '-' : String(row.statusCode),
      error: row.error === null ? '' : truncate(row.error, 60),
    })),
  );
  if (rows.length === limit) {
    console.log(`(the newest ${limit}; there may be more: --limit, --since)`);
  }
}

function usage(message: string): HookfleetError {
  return badArguments('failed', message);
}
