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
import { PAYLOAD_FORMATS, type PayloadFormat } from '../delivery/envelope.js';
import { endpointHeadersSchema, maskHeaders } from '../delivery/endpointHeaders.js';
import { retryScheduleProblem, retryScheduleSchema } from '../delivery/retrySchedule.js';

const HELP = `Usage: hookfleet endpoints <list|add|show|enable|disable|test|rotate-secret> [options]

  list [--owner O]              every endpoint (or owner O's) with its state and last success
  add <url> [--event-type T]…   register an endpoint (prints its signing secret once); with
            [--owner O]         --owner it belongs to customer O and receives only O's messages
            [--description D] [--stale-after-days N]
            [--rate-limit N]    at most N requests per second to it, fleet-wide (1 to 10000;
                                change it with PATCH /v1/endpoints/:id {"rateLimitPerSecond"})
            [--failing-disable-after-hours N]
            [--payload-format envelope|raw]
                                envelope (default): {"type","timestamp","data"}; raw: the payload
            [--header 'Name: value']…
                                sent on every attempt (no hop-by-hop, content-type, webhook-*)
            [--retry-schedule 5s,5m,2h]
                                delays before each retry; default HOOKFLEET_RETRY_SCHEDULE
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

const ACTIONS = ['list', 'add', 'show', 'enable', 'disable', 'test', 'rotate-secret'];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'endpoints',
    argv,
    {
      json: { type: 'boolean' },
      'event-type': { type: 'string', multiple: true },
      description: { type: 'string' },
      'stale-after-days': { type: 'string' },
      'rate-limit': { type: 'string' },
      'failing-disable-after-hours': { type: 'string' },
      owner: { type: 'string' },
      'payload-format': { type: 'string' },
      header: { type: 'string', multiple: true },
      'retry-schedule': { type: 'string' },
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
  if (values['rate-limit'] !== undefined && action !== 'add') {
    throw usage(`--rate-limit applies to add, not ${action}`);
  }
  for (const option of ['payload-format', 'header', 'retry-schedule'] as const) {
    if (values[option] !== undefined && action !== 'add') {
      throw usage(`--${option} applies to add, not ${action}`);
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
        const staleAfterDays = values['stale-after-days'];
        if (staleAfterDays !== undefined && !/^[1-9]\d*$/.test(staleAfterDays)) {
          throw usage(`--stale-after-days takes a positive whole number (got '${staleAfterDays}')`);
        }
        const rateLimit = values['rate-limit'];
        if (rateLimit !== undefined && !/^[1-9]\d{0,3}$|^10000$/.test(rateLimit)) {
          throw usage(
            `--rate-limit takes a whole number of requests per second from 1 to 10000 (got '${rateLimit}')`,
          );
        }
        const failingHours = values['failing-disable-after-hours'];
        if (
          failingHours !== undefined &&
          !(/^[1-9]\d{0,3}$/.test(failingHours) && Number(failingHours) <= 8760)
        ) {
          throw usage(
            `--failing-disable-after-hours takes a whole number from 1 to 8760 (got '${failingHours}')`,
          );
        }
        const row = await insertEndpoint(dbClient.db, {
          url,
          failingDisableAfterHours: failingHours === undefined ? null : Number(failingHours),
          ownerId: owner,
          eventTypes: values['event-type'] ?? [],
          description: values.description ?? '',
          staleAfterDays: staleAfterDays === undefined ? null : Number(staleAfterDays),
          rateLimitPerSecond: rateLimit === undefined ? null : Number(rateLimit),
          payloadFormat: payloadFormatOption(values['payload-format']),
          headers: headerOptions(values.header ?? []),
          retryScheduleMs: retryScheduleOption(values['retry-schedule'], config),
        });
        if (json) console.log(JSON.stringify({ ...publicView(row), secret: row.secret }));
        else console.log(`added ${row.id}\nsigning secret (shown once): ${row.secret}`);
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

function payloadFormatOption(value: string | undefined): PayloadFormat | undefined {
  if (value === undefined) return undefined;
  if (!(PAYLOAD_FORMATS as readonly string[]).includes(value)) {
    throw usage(`--payload-format takes ${PAYLOAD_FORMATS.join(' or ')} (got '${value}')`);
  }
  return value as PayloadFormat;
}

/** `--header 'Name: value'`, each checked by the rules the API applies. */
function headerOptions(values: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon <= 0) throw usage(`--header takes 'Name: value' (got '${value}')`);
    headers[value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
  }
  const parsed = endpointHeadersSchema.safeParse(headers);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = issue.path.length > 0 ? `'${String(issue.path[0])}': ` : '';
    throw usage(`--header ${name}${issue.message}`);
  }
  return parsed.data;
}

/** `--retry-schedule 5s,5m,2h`, checked as the API checks it, retention included. */
function retryScheduleOption(value: string | undefined, config: Config): number[] | undefined {
  if (value === undefined) return undefined;
  const parsed = retryScheduleSchema.safeParse(value.split(',').map((step) => step.trim()));
  if (!parsed.success) throw usage(`--retry-schedule: ${parsed.error.issues[0]!.message}`);
  const problem = retryScheduleProblem(parsed.data, config.messageRetentionDays);
  if (problem !== undefined) throw usage(`--retry-schedule: ${problem}`);
  return parsed.data;
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
