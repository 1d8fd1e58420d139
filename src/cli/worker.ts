import { loadConfig } from '../config.js';
import { createDbClient } from '../db/client.js';
import { resolveDatabaseUrl } from '../db/embeddedPostgres.js';
import { closeOnSignals, Lifecycle, survivePostgresConnectionErrors } from '../lifecycle.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { startMetricsServer } from '../metricsServer.js';
import { startMaintenance } from '../worker/maintenance.js';
import { startWorker } from '../worker/startWorker.js';
import { shutdownBudget } from '../shutdownBudget.js';
import { checkPostgres, checkRedis, firstFailure } from '../startupChecks.js';
import { chooseQueueBackend } from '../queueBackend.js';
import { parseCommandArgs } from './args.js';
import { warnTrialMode } from './banner.js';
import { openQueueBackend } from './openProducer.js';

const HELP = `Usage: hookfleet worker

Runs a delivery worker: takes jobs from the 'deliveries' queue, POSTs them signed to their
endpoints, retries failures with backoff, records outcomes in PostgreSQL. Start as many
processes as the load needs; they share nothing but Redis and PostgreSQL.

Environment: REDIS_URL (or REDIS_CLUSTER_NODES), HOOKFLEET_QUEUE_BACKEND (redis|postgres; unset:
Redis if one answers, else trial mode on PostgreSQL, for one process), DATABASE_URL,
HOOKFLEET_QUEUE_PREFIX, HOOKFLEET_QUEUE_SHARDS, HOOKFLEET_WORKER_SHARDS, HOOKFLEET_CONCURRENCY,
HOOKFLEET_ALLOW_CIDRS, HOOKFLEET_DELIVERY_TIMEOUT_MS, HOOKFLEET_RETRY_SCHEDULE,
HOOKFLEET_RECORDER_FLUSH_MS, HOOKFLEET_ENDPOINT_CACHE_MS, HOOKFLEET_SHUTDOWN_TIMEOUT_MS,
HOOKFLEET_LOCK_DURATION_MS, HOOKFLEET_STALLED_INTERVAL_MS, HOOKFLEET_STALE_AFTER_DAYS,
HOOKFLEET_STALE_WARNING_DAYS, HOOKFLEET_SWEEP_CRON, HOOKFLEET_SWEEP_TZ, HOOKFLEET_ATTEMPT_RETENTION_DAYS,
HOOKFLEET_OPERATOR_WEBHOOK_URL, HOOKFLEET_OPERATOR_WEBHOOK_SECRET, HOOKFLEET_OPERATOR_ALLOW_CIDRS,
LOG_LEVEL, HOOKFLEET_LOG_FORMAT, and
HOOKFLEET_METRICS_PORT (serve this process's Prometheus /metrics on that port).
Run it with NODE_OPTIONS=--max-old-space-size=2000: V8 then collects garbage sooner and a busy
worker peaks around 160 MiB of RSS instead of 210, at the same CPU (see README, Operations).`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('worker', argv, {});
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig();
  const logger = createLogger(config, 'hookfleet-worker');
  const life = new Lifecycle(logger);
  const databaseUrl = await resolveDatabaseUrl(config);
  const queueBackend = await chooseQueueBackend(config);
  const redis = queueBackend === 'redis' ? config.redis : undefined;
  closeOnSignals(
    life,
    config.shutdownTimeoutMs,
    logger,
    shutdownBudget({ redis, databaseUrl: () => databaseUrl }, logger),
  );
  survivePostgresConnectionErrors(logger);
  await firstFailure([checkPostgres(databaseUrl), ...(redis ? [checkRedis(redis)] : [])]);
  const dbClient = life.add('database', createDbClient(databaseUrl), (c) => c.close());
  const metrics = createMetrics();
  if (config.metricsPort !== undefined) {
    const server = life.add(
      'metrics server',
      await startMetricsServer(metrics, config.metricsPort),
      (m) => m.close(),
    );
    logger.info({ port: server.port }, 'metrics at /metrics');
  }
  const backend = openQueueBackend(life, config, queueBackend, databaseUrl, logger);
  // Several trial-mode workers share the queues but each keeps its own endpoint limits.
  if (backend.kind === 'postgres') warnTrialMode(logger, config, backend.schema);
  life.add('worker', startWorker({ config, logger, dbClient, metrics, backend }), (w) => w.close());
  // Every worker registers the sweep's job scheduler (one fixed id: one run per period, however
  // many processes) and takes its turn running it.
  life.add(
    'maintenance',
    await startMaintenance({ config, logger, dbClient, metrics, backend }),
    (m) => m.close(),
  );
  // Runs until a signal closes the lifecycle; closeOnSignals sets the exit code.
  return new Promise<number>(() => {});
}
