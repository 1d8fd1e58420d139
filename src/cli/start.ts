import { loadConfig } from '../config.js';
import { createDbClient } from '../db/client.js';
import { startEmbeddedPostgres } from '../db/embeddedPostgres.js';
import { runMigrations } from '../db/migrate.js';
import { closeOnSignals, Lifecycle, survivePostgresConnectionErrors } from '../lifecycle.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { ensureCredentials } from '../api/auth.js';
import { startApiServer } from '../api/server.js';
import { startMaintenance } from '../worker/maintenance.js';
import { startWorker } from '../worker/startWorker.js';
import { DEGRADED_SHUTDOWN_MS, shutdownBudget } from '../shutdownBudget.js';
import {
  checkApiPort,
  checkDataDirWritable,
  checkPostgres,
  checkRedis,
  firstFailure,
  listenError,
} from '../startupChecks.js';
import { parseCommandArgs } from './args.js';
import { printBanner } from './banner.js';
import { chooseQueueBackend } from '../queueBackend.js';
import { openProducer, openQueueBackend } from './openProducer.js';
import { warnTrialMode } from './banner.js';

const HELP = `Usage: hookfleet start

Runs the whole fleet in one process: migrations, the HTTP API with Bull Board, a delivery
worker and the scheduler (stale-endpoint sweep). With DATABASE_URL unset it starts an embedded
PostgreSQL kept under HOOKFLEET_DATA_DIR (.hookfleet/); with REDIS_URL unset it uses
redis://127.0.0.1:6379 if a Redis answers there, and otherwise runs its queues on that
PostgreSQL (trial mode: one process, for trying hookfleet out; HOOKFLEET_QUEUE_BACKEND=redis or
postgres forces either). Without API keys or dashboard credentials it generates them and prints
them once. SIGTERM or SIGINT shuts everything down gracefully.

Environment: every variable of the api and worker commands (see 'hookfleet api --help' and
'hookfleet worker --help'), plus HOOKFLEET_DATA_DIR and HOOKFLEET_EMBEDDED_PG_PORT.

Before starting anything it checks Redis, PostgreSQL (or the data directory and the embedded
server's port) and the API port, and stops with one line saying what is missing. Once up it
prints the API and dashboard URLs, generated credentials and a curl for a first endpoint.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('start', argv, {});
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const loaded = loadConfig();
  const logger = createLogger(loaded, 'hookfleet');
  survivePostgresConnectionErrors(logger);
  const life = new Lifecycle(logger);
  let databaseUrl = loaded.databaseUrl;
  // Before anything else: it decides which stores the checks and the shutdown probe look at.
  const queueBackend = await chooseQueueBackend(loaded);
  const redis = queueBackend === 'redis' ? loaded.redis : undefined;
  closeOnSignals(
    life,
    loaded.shutdownTimeoutMs,
    logger,
    shutdownBudget({ redis, databaseUrl: () => databaseUrl }, logger),
  );
  await firstFailure([
    databaseUrl === undefined ? checkDataDirWritable(loaded.dataDir) : checkPostgres(databaseUrl),
    ...(redis ? [checkRedis(redis)] : []),
    checkApiPort(loaded.port),
  ]);
  // After the checks: a run that cannot start has no use for credentials.
  const config = ensureCredentials(loaded, logger);
  try {
    if (databaseUrl === undefined) {
      const embedded = life.add(
        'embedded postgres',
        await startEmbeddedPostgres(config, logger),
        (pg) => pg.stop(),
        { always: true },
      );
      databaseUrl = embedded.url;
    }
    await runMigrations(databaseUrl);
    const dbClient = life.add('database', createDbClient(databaseUrl), (c) => c.close());
    const metrics = createMetrics();
    const backend = openQueueBackend(life, config, queueBackend, databaseUrl, logger);
    if (backend.kind === 'postgres') warnTrialMode(logger, config, backend.schema);
    const producer = openProducer(life, config, dbClient, backend, logger);
    const worker = life.add(
      'worker',
      startWorker({ config, logger, dbClient, metrics, backend }),
      (w) => w.close(),
    );
    life.add(
      'maintenance',
      await startMaintenance({ config, logger, dbClient, metrics, backend }),
      (m) => m.close(),
    );
    // This process's worker keeps the breaker's view (in Redis, or in its memory in trial mode).
    const circuitStates = config.circuitFailures === 0 ? undefined : worker.circuitStates;
    const api = life.add(
      'api',
      await startApiServer({ config, logger, dbClient, producer, metrics, circuitStates }),
      (a) => a.close(),
    );
    logger.info(
      {
        api: `http://127.0.0.1:${api.port}/v1`,
        dashboard: `http://127.0.0.1:${api.port}/admin/queues`,
      },
      'hookfleet is up',
    );
    printBanner({ title: 'hookfleet', port: api.port, loaded, config, queueBackend });
  } catch (error) {
    // Whatever started is stopped (the embedded PostgreSQL above all) before the one-line error.
    await life.close(DEGRADED_SHUTDOWN_MS);
    throw listenError(error, config.port);
  }
  return new Promise<number>(() => {});
}
