import { loadConfig } from '../config.js';
import { findAttemptsForMessage } from '../db/attempts.js';
import { createDbClient, type DbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import { findMessage } from '../db/messages.js';
import type { MessageRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import { redeliverMessage } from '../producer/redeliver.js';
import type { Config } from '../config.js';
import { readDeliveriesSending } from '../delivery/deliveriesSending.js';
import { createProducerRedis, quitRedis, waitUntilRedisReady } from '../redis.js';
import { toMessageView, type MessageView } from '../views.js';
import { badArguments, parseCommandArgs } from './args.js';
import { openDeliveriesQueue } from './deliveriesQueue.js';
import { printFields, printTable, truncate } from './output.js';

const HELP = `Usage: hookfleet messages <show|redeliver> <id> [options]

  show <id>                        the message and each delivery's status and attempts
                                   (time, outcome, HTTP status, duration, error)
  redeliver <id> [--endpoint ID]…  deliver it again, to every endpoint it was sent to or only to
                                   these: a failed delivery is retried in place, a finished or
                                   expired one is sent as a new job, a queued one is left alone

Options: --json (machine-readable output on stdout), -h/--help.
Attempts are written by the workers in batches, so the newest can lag by
HOOKFLEET_RECORDER_FLUSH_MS.

Environment: DATABASE_URL (else the embedded PostgreSQL of 'hookfleet start', under
HOOKFLEET_DATA_DIR), REDIS_URL and HOOKFLEET_QUEUE_PREFIX (redeliver; show reads which
deliveries are in flight there, and goes without when Redis does not answer within 1 s).`;

/** Payloads are shown up to this many characters; --json shows them whole. */
const PAYLOAD_PREVIEW_CHARS = 500;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'messages',
    argv,
    { json: { type: 'boolean' }, endpoint: { type: 'string', multiple: true } },
    true,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, id, ...extra] = positionals;
  if (action === undefined) throw usage('expected an action: show, redeliver');
  if (action !== 'show' && action !== 'redeliver') throw usage(`unknown action '${action}'`);
  if (id === undefined) throw usage(`${action}: expected a message id`);
  if (extra.length > 0) throw usage(`unexpected argument '${extra[0]}'`);
  if (action === 'show' && values.endpoint !== undefined) {
    throw usage('--endpoint goes with redeliver, not show');
  }
  const config = loadConfig();
  const dbClient = createDbClient(await resolveDatabaseUrl(config), { max: 2 });
  try {
    const message = await findMessage(dbClient.db, id);
    if (!message) throw new HookfleetError('not_found', `messages: no message ${id}`, 404);
    const json = values.json ?? false;
    if (action === 'show') return await show(config, dbClient, message, json);
    const endpointIds = values.endpoint ?? message.endpointIds;
    const fanOut = new Set(message.endpointIds);
    const stranger = endpointIds.find((endpointId) => !fanOut.has(endpointId));
    if (stranger !== undefined) {
      throw usage(`redeliver: ${stranger} was not a recipient of ${message.id}`);
    }
    const deliveries = await openDeliveriesQueue(config, 'messages redeliver', dbClient.url);
    try {
      const redeliveries = await redeliverMessage(
        deliveries.queue.forMessage(message.id),
        message,
        [...new Set(endpointIds)],
        { messagesQueue: deliveries.messagesQueue.forMessage(message.id) },
      );
      if (json) console.log(JSON.stringify({ id: message.id, redeliveries }));
      else {
        printTable(
          redeliveries.map((r) => ({ endpoint: r.endpointId, action: r.action, job: r.jobId })),
        );
      }
      return 0;
    } finally {
      await deliveries.close();
    }
  } finally {
    await dbClient.close();
  }
}

/** How long `show` waits for Redis to tell which deliveries are in flight before going without. */
const IN_FLIGHT_WAIT_MS = 1000;

async function show(
  config: Config,
  dbClient: DbClient,
  message: MessageRow,
  json: boolean,
): Promise<number> {
  const [attempts, sending] = await Promise.all([
    findAttemptsForMessage(dbClient.db, message.id),
    deliveriesInFlight(config, message),
  ]);
  const view = toMessageView(message, attempts, sending);
  if (json) {
    console.log(JSON.stringify(view));
    return 0;
  }
  printMessage(view);
  return 0;
}

/**
 * Which deliveries are being sent now (delivery/deliveriesSending.ts), best effort: with Redis
 * unreachable, statuses come from the attempts alone.
 */
async function deliveriesInFlight(
  config: Config,
  message: MessageRow,
): Promise<ReadonlySet<string>> {
  // In trial mode the limits live in the delivering process's memory: nothing to read here.
  if (config.queueBackend === 'postgres') return new Set();
  const redis = createProducerRedis(config.redis, 'hookfleet:cli');
  redis.on('error', () => {});
  try {
    if (!(await waitUntilRedisReady(redis, IN_FLIGHT_WAIT_MS))) return new Set();
    return await readDeliveriesSending(
      redis,
      config.queuePrefix,
      message.id,
      message.endpointIds,
    ).catch(() => new Set<string>());
  } finally {
    if (redis.status === 'ready') await quitRedis(redis);
    else redis.disconnect();
  }
}

function printMessage(view: MessageView): void {
  printFields([
    ['message', view.id],
    ['event type', view.eventType],
    ['owner', view.ownerId ?? '- (endpoints without an owner)'],
    ['created', view.createdAt],
    ['enqueued', view.enqueuedAt ?? 'not yet (a send was cut short; send it again to resume)'],
    ['idempotency key', view.idempotencyKey ?? '-'],
    ['payload', truncate(JSON.stringify(view.payload), PAYLOAD_PREVIEW_CHARS)],
  ]);
  if (view.deliveries.length === 0) console.log('\nno deliveries: no endpoint was subscribed');
  for (const delivery of view.deliveries) {
    const count = delivery.attempts.length;
    console.log(
      `\n${delivery.endpointId}: ${delivery.status} (${count} attempt${count === 1 ? '' : 's'})`,
    );
    if (count === 0) continue;
    printTable(
      delivery.attempts.map((a) => ({
        '#': String(a.attemptNumber),
        time: a.attemptedAt,
        outcome: a.outcome,
        status: a.statusCode === null ? '-' : String(a.statusCode),
        duration: `${a.durationMs} ms`,
        error: a.error === null ? '' : truncate(a.error, 80),
      })),
    );
  }
}

function usage(message: string): HookfleetError {
  return badArguments('messages', message);
}
