import { loadConfig } from '../config.js';
import { createDbClient } from '../db/client.js';
import { HookfleetError } from '../errors.js';
import { closeOnSignals, Lifecycle, survivePostgresConnectionErrors } from '../lifecycle.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { ensureCredentials } from '../api/auth.js';
import { startApiServer } from '../api/server.js';
import { DEGRADED_SHUTDOWN_MS, shutdownBudget } from '../shutdownBudget.js';
import {
  checkApiPort,
  checkPostgres,
  checkRedis,
  firstFailure,
  listenError,
} from '../startupChecks.js';
import { parseCommandArgs } from './args.js';
import { chooseQueueBackend } from '../queueBackend.js';
import { printBanner, warnTrialMode } from './banner.js';
import { openProducer, openQueueBackend } from './openProducer.js';

const HELP = `Usage: hookfleet api [--help]

Runs the HTTP API: /v1/endpoints and /v1/messages (Bearer API key), Bull Board at
/admin/queues (basic auth), /healthz, /metrics and /openapi.json. It enqueues deliveries
but does not make them: run 'hookfleet worker' processes (or 'hookfleet start') as well.
Without API keys or dashboard credentials it generates them and prints them once.

Options:
  -h, --help  show this help

Environment: DATABASE_URL (required), REDIS_URL (or REDIS_CLUSTER_NODES), HOOKFLEET_QUEUE_SHARDS,
HOOKFLEET_QUEUE_BACKEND (redis|postgres; unset: Redis if one answers, else trial mode on
PostgreSQL), PORT (default 3000), HOOKFLEET_API_KEYS,
HOOKFLEET_ADMIN_USER, HOOKFLEET_ADMIN_PASSWORD, HOOKFLEET_QUEUE_PREFIX, HOOKFLEET_ALLOW_CIDRS,
HOOKFLEET_MAX_PAYLOAD_BYTES, HOOKFLEET_DELIVERY_TIMEOUT_MS (verification requests),
HOOKFLEET_SECRET_ROTATION_OVERLAP_MS, HOOKFLEET_SHUTDOWN_TIMEOUT_MS, LOG_LEVEL,
HOOKFLEET_LOG_FORMAT`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('api', argv, {});
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const loaded = loadConfig();
  if (loaded.databaseUrl === undefined) {
    throw new HookfleetError(
      'config_missing',
      'api: DATABASE_URL is not set (expected postgres://user:password@host/db)',
    );
  }
  const logger = createLogger(loaded, 'hookfleet-api');
  survivePostgresConnectionErrors(logger);
  const life = new Lifecycle(logger);
  const queueBackend = await chooseQueueBackend(loaded);
  const redis = queueBackend === 'redis' ? loaded.redis : undefined;
  closeOnSignals(
    life,
    loaded.shutdownTimeoutMs,
    logger,
    shutdownBudget({ redis, databaseUrl: () => loaded.databaseUrl }, logger),
  );
  await firstFailure([
    checkPostgres(loaded.databaseUrl),
    ...(redis ? [checkRedis(redis)] : []),
    checkApiPort(loaded.port),
  ]);
  // After the checks: a run that cannot start has no use for credentials.
  const config = ensureCredentials(loaded, logger);
  try {
    const dbClient = life.add('database', createDbClient(loaded.databaseUrl), (c) => c.close());
    const backend = openQueueBackend(life, config, queueBackend, loaded.databaseUrl, logger);
    if (backend.kind === 'postgres') warnTrialMode(logger, config, backend.schema);
    const producer = openProducer(life, config, dbClient, backend, logger);
    const metrics = createMetrics();
    const api = life.add(
      'api',
      await startApiServer({ config, logger, dbClient, producer, metrics }),
      (s) => s.close(),
    );
    printBanner({ title: 'hookfleet api', port: api.port, loaded, config, queueBackend });
  } catch (error) {
    await life.close(DEGRADED_SHUTDOWN_MS);
    throw listenError(error, config.port);
  }
  // Runs until a signal closes the lifecycle; closeOnSignals sets the exit code.
  return new Promise<number>(() => {});
}
