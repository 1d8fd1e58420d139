import { loadConfig } from '../config.js';
import { createDbClient, type DbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import { findEndpoint, insertEndpoint, listEndpoints, setEndpointActive } from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import { checkEndpointUrl } from '../producer/endpointUrl.js';
import { Producer } from '../producer/producer.js';
import { createAddressGuard } from '../worker/addressGuard.js';
import { parseCommandArgs } from './args.js';
import { printTable } from './output.js';

const HELP = `Usage: hookfleet endpoints <list|add|enable|disable|test> [options]

  list                          every endpoint with its state and last success
  add <url> [--event-type T]…   register an endpoint (prints its signing secret once)
            [--description D] [--stale-after-days N]
  enable <id>                   re-enable (restarts the stale clock)
  disable <id>                  disable; queued deliveries to it fail and can be replayed
  test <id>                     send a test event now (a worker delivers it)

Options: --json (machine-readable output), -h/--help.

Environment: DATABASE_URL (else the embedded PostgreSQL of 'hookfleet start', under
HOOKFLEET_DATA_DIR), REDIS_URL and HOOKFLEET_QUEUE_PREFIX (test), HOOKFLEET_ALLOW_CIDRS (add).`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'endpoints',
    argv,
    {
      json: { type: 'boolean' },
      'event-type': { type: 'string', multiple: true },
      description: { type: 'string' },
      'stale-after-days': { type: 'string' },
    },
    true,
  );
  const [action, target, ...extra] = positionals;
  if (values.help || action === undefined) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw usage(`unexpected argument '${extra[0]}'`);
  const config = loadConfig();
  const dbClient = createDbClient(await resolveDatabaseUrl(config), { max: 2 });
  const print = (rows: EndpointRow[]) =>
    values.json ? console.log(JSON.stringify(rows.map(publicView))) : printEndpoints(rows);
  try {
    switch (action) {
      case 'list': {
        print(await listEndpoints(dbClient.db, 1000));
        return 0;
      }
      case 'add': {
        const url = required(target, 'a URL');
        await checkEndpointUrl(createAddressGuard({ allowCidrs: config.allowCidrs }), url);
        const staleAfterDays = values['stale-after-days'];
        if (staleAfterDays !== undefined && !/^[1-9]\d*$/.test(staleAfterDays)) {
          throw usage(`--stale-after-days takes a positive whole number (got '${staleAfterDays}')`);
        }
        const row = await insertEndpoint(dbClient.db, {
          url,
          eventTypes: values['event-type'] ?? [],
          description: values.description ?? '',
          staleAfterDays: staleAfterDays === undefined ? null : Number(staleAfterDays),
        });
        if (values.json) console.log(JSON.stringify({ ...publicView(row), secret: row.secret }));
        else console.log(`added ${row.id}\nsigning secret (shown once): ${row.secret}`);
        return 0;
      }
      case 'enable':
      case 'disable': {
        const row = await setEndpointActive(
          dbClient.db,
          required(target, 'an endpoint id'),
          action === 'enable',
        );
        if (!row) throw notFound(target!);
        print([row]);
        return 0;
      }
      case 'test':
        return await sendTest(dbClient, required(target, 'an endpoint id'), values.json ?? false);
      default:
        throw usage(`unknown action '${action}'`);
    }
  } finally {
    await dbClient.close();
  }
}

async function sendTest(dbClient: DbClient, id: string, json: boolean): Promise<number> {
  if (!(await findEndpoint(dbClient.db, id))) throw notFound(id);
  const producer = new Producer({ config: loadConfig(), dbClient });
  try {
    const result = await producer.sendTestEvent(id);
    console.log(json ? JSON.stringify(result) : `queued test message ${result.id} for ${id}`);
    return 0;
  } finally {
    await producer.close();
  }
}

/** The row without its secrets, as list and show print it. */
function publicView(row: EndpointRow) {
  const { secret: _secret, previousSecret: _previous, ...rest } = row;
  return rest;
}

function printEndpoints(rows: EndpointRow[]): void {
  printTable(
    rows.map((row) => ({
      id: row.id,
      state: row.active ? 'active' : `disabled (${row.deactivationReason ?? 'manual'})`,
      url: row.url,
      events: row.eventTypes.length === 0 ? '*' : row.eventTypes.join(','),
      'last success': row.lastSuccessAt?.toISOString() ?? 'never',
      failures: String(row.consecutiveFailures),
    })),
  );
}

function required(value: string | undefined, what: string): string {
  if (value === undefined) throw usage(`expected ${what}`);
  return value;
}

function usage(message: string): HookfleetError {
  return new HookfleetError(
    'bad_arguments',
    `endpoints: ${message} (see 'hookfleet endpoints --help')`,
  );
}

function notFound(id: string): HookfleetError {
  return new HookfleetError('not_found', `endpoints: no endpoint ${id}`, 404);
}
