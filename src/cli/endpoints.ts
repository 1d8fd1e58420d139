import { loadConfig, type Config } from '../config.js';
import { createDbClient, type DbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import {
  findEndpoint,
  insertEndpoint,
  listEndpoints,
  rotateEndpointSecret,
} from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import { endpointHealthView, type EndpointHealthView } from '../views.js';
import { checkEndpointUrl } from '../delivery/endpointUrl.js';
import { Producer } from '../producer/producer.js';
import { openQueueBackend } from '../queueBackend.js';
import { createAddressGuard } from '../delivery/addressGuard.js';
import { badArguments, parseCommandArgs } from './args.js';
import { formatDurationMs, printFields, printTable } from './output.js';
import { durationText } from '../duration.js';
import { isOwnerId } from '../ids.js';
import { maskHeaders } from '../delivery/endpointHeaders.js';
import {
  ENDPOINT_SETTING_FLAGS,
  endpointSettingsFromFlags,
  UPDATE_ONLY_FLAGS,
  type SettingFlags,
} from './endpointFlags.js';
import { updateEndpointFromFlags } from './endpointUpdate.js';

const HELP = `Usage: hookfleet endpoints <list|add|show|enable|disable|test|rotate-secret|update> [options]

  list [--owner O]              every endpoint (or owner O's) with its state and last success
  add <url> [--event-type T]…   register an endpoint (prints its signing secret once); with
            [--owner O]         --owner it belongs to customer O and receives only O's messages
            [--description D] [--stale-after-days N]
            [--rate-limit N]    at most N requests per second to it, fleet-wide (1 to 10000)
            [--failing-disable-after-hours N]
            [--payload-format envelope|raw]
                                envelope (default): {"type","timestamp","data"}; raw: the payload
            [--header 'Name: value']…
                                sent on every attempt (no hop-by-hop, content-type, webhook-*)
            [--retry-schedule 5s,5m,2h]
                                delays before each retry; default HOOKFLEET_RETRY_SCHEDULE
  update <id> [options]         change an endpoint: the options of add (--event-type given
                                replaces the list), and
            [--url URL]         a new address
            [--header 'Name: value']…
                                sets those headers; the others are kept
            [--remove-header Name]…
                                stops sending that header
            [--rate-limit none] [--retry-schedule default] [--stale-after-days default]
            [--failing-disable-after-hours default]
                                back to no limit, or to the fleet's default
  show <id>                     one endpoint with its health: counters, 24 h success rate, latency
  enable <id>                   re-enable (restarts the stale clock, ends its failing streak)
  disable <id>                  disable; queued deliveries to it fail and can be replayed
  test <id>                     send a test event now (a worker delivers it)
  rotate-secret <id>            new signing secret, printed once; the old one keeps signing for
                                HOOKFLEET_SECRET_ROTATION_OVERLAP_MS (default 24 h)

Options: --json (machine-readable output on stdout), -h/--help.
Failed deliveries of an endpoint: 'hookfleet failed list|replay --endpoint <id>'.

Environment: DATABASE_URL (else the embedded PostgreSQL of 'hookfleet start', under
HOOKFLEET_DATA_DIR), REDIS_URL and HOOKFLEET_QUEUE_PREFIX (test), HOOKFLEET_ALLOW_CIDRS (add),
HOOKFLEET_SECRET_ROTATION_OVERLAP_MS (rotate-secret).`;

const ACTIONS = ['list', 'add', 'show', 'enable', 'disable', 'test', 'rotate-secret', 'update'];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'endpoints',
    argv,
    {
      json: { type: 'boolean' },
      owner: { type: 'string' },
      ...ENDPOINT_SETTING_FLAGS,
      ...UPDATE_ONLY_FLAGS,
    },
    true,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, target, ...extra] = positionals;
  if (action === undefined) throw usage(`expected an action: ${ACTIONS.join(', ')}`);
  if (!ACTIONS.includes(action)) throw usage(`unknown action '${action}'`);
  if (extra.length > 0) throw usage(`unexpected argument '${extra[0]}'`);
  if (action !== 'list' && target === undefined) {
    throw usage(action === 'add' ? 'expected a URL' : `${action}: expected an endpoint id`);
  }
  if (action === 'list' && target !== undefined) throw usage(`unexpected argument '${target}'`);
  const owner = values.owner;
  if (owner !== undefined && action !== 'list' && action !== 'add') {
    throw usage(`--owner applies to list and add, not ${action}`);
  }
  for (const option of Object.keys(ENDPOINT_SETTING_FLAGS) as (keyof SettingFlags)[]) {
    if (values[option] !== undefined && action !== 'add' && action !== 'update') {
      throw usage(`--${option} applies to add and update, not ${action}`);
    }
  }
  for (const option of Object.keys(UPDATE_ONLY_FLAGS) as (keyof SettingFlags)[]) {
    if (values[option] !== undefined && action !== 'update') {
      throw usage(`--${option} applies to update, not ${action}`);
    }
  }
  if (owner !== undefined && !isOwnerId(owner)) {
    throw usage(`--owner takes 1 to 128 letters, digits and _ - . : @ (got '${owner}')`);
  }
  const config = loadConfig();
  const dbClient = createDbClient(await resolveDatabaseUrl(config), { max: 2 });
  const json = values.json ?? false;
  const print = (rows: EndpointRow[]) =>
    json ? console.log(JSON.stringify(rows.map(publicView))) : printEndpoints(rows);
  try {
    switch (action) {
      case 'list': {
        print(await listEndpoints(dbClient.db, 1000, undefined, owner));
        return 0;
      }
      case 'add': {
        const url = target!;
        await checkEndpointUrl(createAddressGuard({ allowCidrs: config.allowCidrs }), url);
        const settings = endpointSettingsFromFlags('endpoints', values, config, 'add');
        const row = await insertEndpoint(dbClient.db, {
          ...settings,
          url,
          ownerId: owner,
          eventTypes: settings.eventTypes ?? [],
          description: settings.description ?? '',
          // add has no --remove-header: every value is a string.
          headers: settings.headers as Record<string, string> | undefined,
        });
        if (json) console.log(JSON.stringify({ ...publicView(row), secret: row.secret }));
        else console.log(`added ${row.id}\nsigning secret (shown once): ${row.secret}`);
        return 0;
      }
      case 'update': {
        const change = endpointSettingsFromFlags('endpoints update', values, config, 'update');
        const existing = await requireEndpoint(dbClient, target!);
        const { row, changed } = await updateEndpointFromFlags(
          dbClient.db,
          config,
          existing,
          change,
        );
        if (!row) throw notFound(existing.id); // deleted meanwhile
        if (json) console.log(JSON.stringify(publicView(row)));
        else console.log(`updated ${row.id}: ${changed.join(', ')}`);
        return 0;
      }
      case 'show': {
        const view = await endpointHealthView(
          dbClient.db,
          await requireEndpoint(dbClient, target!),
        );
        if (json) console.log(JSON.stringify(view));
        else printHealth(view, config);
        return 0;
      }
      case 'enable':
      case 'disable': {
        // Through a Producer, which reports the change to the operator webhook.
        const producer = new Producer({ config, dbClient });
        let row;
        try {
          ({ row } = await producer.setEndpointActive(target!, action === 'enable'));
        } finally {
          await producer.close();
        }
        if (!row) throw notFound(target!);
        print([row]);
        return 0;
      }
      case 'test':
        return await sendTest(dbClient, target!, json);
      case 'rotate-secret':
        return await rotateSecret(dbClient, config, target!, json);
    }
    throw usage(`unknown action '${action}'`);
  } finally {
    await dbClient.close();
  }
}

async function sendTest(dbClient: DbClient, id: string, json: boolean): Promise<number> {
  await requireEndpoint(dbClient, id);
  const config = loadConfig();
  // The backend the fleet runs on: Redis, or PostgreSQL in trial mode.
  const backend = await openQueueBackend(config, { databaseUrl: dbClient.url });
  const producer = new Producer({ config, dbClient, backend });
  try {
    const result = await producer.sendTestEvent(id);
    console.log(json ? JSON.stringify(result) : `queued test message ${result.id} for ${id}`);
    return 0;
  } finally {
    await producer.close();
    await backend.close();
  }
}

async function rotateSecret(
  dbClient: DbClient,
  config: Config,
  id: string,
  json: boolean,
): Promise<number> {
  const overlapMs = config.secretRotationOverlapMs;
  const row = await rotateEndpointSecret(dbClient.db, id, overlapMs);
  if (!row) throw notFound(id);
  const expiresAt = row.previousSecretExpiresAt!.toISOString();
  if (json) {
    // The shape of POST /v1/endpoints/:id/rotate-secret.
    console.log(
      JSON.stringify({ id: row.id, secret: row.secret, previousSecretExpiresAt: expiresAt }),
    );
  } else {
    console.log(`new signing secret for ${row.id} (shown once): ${row.secret}`);
    console.log(
      `the previous secret keeps signing deliveries (a second signature) for ${formatDurationMs(overlapMs)}, until ${expiresAt}`,
    );
  }
  return 0;
}

async function requireEndpoint(dbClient: DbClient, id: string): Promise<EndpointRow> {
  const row = await findEndpoint(dbClient.db, id);
  if (!row) throw notFound(id);
  return row;
}

/** The row without its secrets (header values masked), as list and show print it. */
function publicView(row: EndpointRow) {
  const { secret: _secret, previousSecret: _previous, ...rest } = row;
  return { ...rest, headers: maskHeaders(row.headers) };
}

function stateOf(row: { active: boolean; deactivationReason: string | null }): string {
  return row.active ? 'active' : `disabled (${row.deactivationReason ?? 'manual'})`;
}

function printEndpoints(rows: EndpointRow[]): void {
  printTable(
    rows.map((row) => ({
      id: row.id,
      state: stateOf(row),
      url: row.url,
      events: row.eventTypes.length === 0 ? '*' : row.eventTypes.join(','),
      'last success': row.lastSuccessAt?.toISOString() ?? 'never',
      failures: String(row.consecutiveFailures),
      owner: row.ownerId ?? '—',
    })),
  );
}

function printHealth(view: EndpointHealthView, config: Config): void {
  const stats = view.stats24h;
  const rate =
    stats.successRate === null ? '' : `, ${(stats.successRate * 100).toFixed(1)}% succeeded`;
  const latency =
    stats.meanLatencyMs === null
      ? ''
      : `, latency mean ${stats.meanLatencyMs} ms, p95 ${stats.p95LatencyMs ?? '-'} ms`;
  printFields([
    ['id', view.id],
    ['url', view.url],
    ['owner', view.ownerId ?? '— (platform-wide: messages without an owner)'],
    ['description', view.description],
    ['state', stateOf(view) + (view.deactivatedAt ? ` since ${view.deactivatedAt}` : '')],
    ['event types', view.eventTypes.length === 0 ? '* (every type)' : view.eventTypes.join(', ')],
    ['created', view.createdAt],
    ['last success', view.lastSuccessAt ?? 'never'],
    ['last failure', view.lastFailureAt ?? 'never'],
    ['failures in a row', String(view.consecutiveFailures)],
    ['failing since', view.failingSince ?? '— (not failing)'],
    ['attempts (all time)', `${view.successCount} succeeded, ${view.failureCount} failed`],
    [
      'stale after',
      view.staleAfterDays === null
        ? `${config.staleAfterDays} days without a success (the default)`
        : `${view.staleAfterDays} days without a success`,
    ],
    [
      'rate limit',
      view.rateLimitPerSecond === null
        ? 'none (in-flight limit only)'
        : `${view.rateLimitPerSecond} requests per second`,
    ],
    [
      'disabled when failing for',
      view.failingDisableAfterHours === null
        ? `${config.failingDisableAfterHours} hours (the default)`
        : `${view.failingDisableAfterHours} hours`,
    ],
    [
      'payload',
      view.payloadFormat === 'raw' ? 'raw (the payload alone)' : 'envelope (type, timestamp, data)',
    ],
    [
      'headers',
      Object.keys(view.headers).length === 0
        ? 'none'
        : Object.keys(view.headers)
            .map((name) => `${name}: ${view.headers[name]}`)
            .join(', '),
    ],
    [
      'retry schedule',
      view.retrySchedule === null
        ? `${config.retryScheduleMs.map(durationText).join(', ')} (the default)`
        : view.retrySchedule.join(', '),
    ],
    ['last 24 h', `${stats.attempts} attempts${rate}${latency}`],
  ]);
}

function usage(message: string): HookfleetError {
  return badArguments('endpoints', message);
}

function notFound(id: string): HookfleetError {
  return new HookfleetError('not_found', `endpoints: no endpoint ${id}`, 404);
}
