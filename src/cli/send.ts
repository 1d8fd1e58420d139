import { readFile } from 'node:fs/promises';
import { loadConfig } from '../config.js';
import { createDbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import { HookfleetError } from '../errors.js';
import { Producer } from '../producer/producer.js';
import { openQueueBackend } from '../queueBackend.js';
import type { SendInput } from '../producer/sendInput.js';
import { parseCommandArgs } from './args.js';

const HELP = `Usage: hookfleet send <eventType> <json|@file> [--owner O] [--idempotency-key K]
                     [--endpoint ID]… [--json]

Sends a message: fans it out to every active endpoint of owner O (without --owner: every active
endpoint without an owner) subscribed to <eventType> (or only to the --endpoint ids given, which
must belong to the same owner) and prints the message id and how many deliveries were queued. The payload
is JSON on the command line, or @path to read it from a file (@- for standard input).

Environment: DATABASE_URL (else the embedded PostgreSQL of 'hookfleet start'), REDIS_URL,
HOOKFLEET_QUEUE_PREFIX, HOOKFLEET_MAX_PAYLOAD_BYTES.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'send',
    argv,
    {
      json: { type: 'boolean' },
      'idempotency-key': { type: 'string' },
      endpoint: { type: 'string', multiple: true },
      owner: { type: 'string' },
    },
    true,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [eventType, source, ...extra] = positionals;
  if (eventType === undefined || source === undefined || extra.length > 0) {
    throw new HookfleetError(
      'bad_arguments',
      "send: expected <eventType> <json|@file> (see 'hookfleet send --help')",
    );
  }
  const payload = parsePayload(await readSource(source));
  const config = loadConfig();
  const dbClient = createDbClient(await resolveDatabaseUrl(config), { max: 2 });
  // The backend the fleet runs on: Redis, or PostgreSQL in trial mode.
  const backend = await openQueueBackend(config, { databaseUrl: dbClient.url });
  const producer = new Producer({ config, dbClient, backend });
  try {
    const result = await producer.send({
      eventType,
      payload,
      ...(values.owner !== undefined && { ownerId: values.owner }),
      ...(values['idempotency-key'] !== undefined && { idempotencyKey: values['idempotency-key'] }),
      ...(values.endpoint !== undefined && { endpointIds: values.endpoint }),
    });
    if (values.json) console.log(JSON.stringify(result));
    else {
      const note = result.duplicate ? ' (idempotency key seen before: nothing new queued)' : '';
      console.log(`message ${result.id}: ${result.deliveries} deliveries queued${note}`);
    }
    return 0;
  } finally {
    await producer.close();
    await backend.close();
    await dbClient.close();
  }
}

async function readSource(source: string): Promise<string> {
  if (!source.startsWith('@')) return source;
  const path = source.slice(1);
  try {
    return path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (error) {
    throw new HookfleetError(
      'bad_arguments',
      `send: cannot read ${path}: ${(error as Error).message}`,
    );
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parsePayload(text: string): SendInput['payload'] {
  try {
    return JSON.parse(text) as SendInput['payload'];
  } catch (error) {
    throw new HookfleetError(
      'bad_arguments',
      `send: the payload is not JSON: ${(error as Error).message}`,
    );
  }
}
