/**
 * What `hookfleet start` and `hookfleet api` print once they are up: where the API and the
 * dashboard are, the credentials generated for this run (they exist nowhere else), and a curl
 * that registers a first endpoint. Plain lines on stdout whatever the log format: they are for
 * the person who ran the command, who reads the terminal or `docker logs`, and the credentials
 * are shown once. Machines get the same facts from the JSON log lines ('hookfleet is up' and
 * the generated-credentials warning); a log shipper keeps a non-JSON line as a plain message.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { QueueBackendKind } from '../queueBackend.js';

export interface BannerFacts {
  /** The process title: `hookfleet` or `hookfleet api`. */
  title: string;
  port: number;
  /** The config before ensureCredentials (what the environment set). */
  loaded: Config;
  /** The config after it (with any generated credentials). */
  config: Config;
  /** Where the queues run; `postgres` (trial mode) gets a box of its own. Default redis. */
  queueBackend?: QueueBackendKind;
}

/** Why trial mode was chosen, in the words of the variables that chose it. */
function trialReason(loaded: Config): string {
  return loaded.queueBackend === 'postgres'
    ? 'HOOKFLEET_QUEUE_BACKEND=postgres'
    : 'REDIS_URL is unset and no Redis answers at redis://127.0.0.1:6379';
}

/** The lines that say trial mode, what it is for and how to leave it. */
export function trialModeLines(loaded: Config): string[] {
  return [
    '  ************************************************************************',
    '  TRIAL MODE: the queues run on PostgreSQL, not Redis',
    `  (${trialReason(loaded)}).`,
    '  Fine for trying hookfleet out: one process, a few hundred deliveries/s.',
    '  For production, run Redis and set REDIS_URL (see README, Trial mode).',
    '  ************************************************************************',
  ];
}

/** The same said in the log, once, for log readers who never see the banner. */
export function warnTrialMode(logger: Logger, config: Config, schema: string): void {
  logger.warn(
    { queueBackend: 'postgres', schema, reason: trialReason(config) },
    'trial mode: queues on PostgreSQL (one process only; use Redis in production)',
  );
}

export function bannerLines({ title, port, loaded, config, queueBackend }: BannerFacts): string[] {
  const base = `http://127.0.0.1:${port}`;
  const generatedKey = loaded.apiKeys.length === 0 ? config.apiKeys[0] : undefined;
  const generatedAdmin = loaded.adminPassword === undefined;
  const key = generatedKey ?? '<a key from HOOKFLEET_API_KEYS>';
  const lines = [
    '',
    `${title} is up`,
    `  API         ${base}/v1   (reference: ${base}/openapi.json)`,
    `  Dashboard   ${base}/admin/queues   and ${base}/admin/endpoints`,
  ];
  if (queueBackend === 'postgres') lines.splice(2, 0, ...trialModeLines(loaded));
  if (generatedKey !== undefined) lines.push(`  API key     ${generatedKey}`);
  if (generatedAdmin) {
    lines.push(
      `  Dashboard   user ${config.adminUser ?? ''}, password ${config.adminPassword ?? ''}`,
    );
  }
  if (generatedKey !== undefined || generatedAdmin) {
    lines.push(
      '  (generated for this run, shown once: set HOOKFLEET_API_KEYS and',
      '   HOOKFLEET_ADMIN_USER / HOOKFLEET_ADMIN_PASSWORD to keep them across restarts)',
    );
  }
  lines.push(
    '',
    'Register a first endpoint (the answer carries its signing secret):',
    `  curl -s ${base}/v1/endpoints -H 'Authorization: Bearer ${key}' \\`,
    `    -H 'Content-Type: application/json' -d '{"url":"http://127.0.0.1:4000/hooks"}'`,
  );
  if (config.allowCidrs.length === 0) {
    lines.push(
      '  (the address guard refuses loopback receivers unless HOOKFLEET_ALLOW_CIDRS=127.0.0.0/8)',
    );
  }
  lines.push('');
  return lines;
}

export function printBanner(facts: BannerFacts): void {
  process.stdout.write(`${bannerLines(facts).join('\n')}\n`);
}
