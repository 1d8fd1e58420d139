/**
 * The only module that reads `process.env`. Every setting is validated once, at start-up, by one
 * zod schema; a bad value stops the process with a message naming the variable and the form it
 * expects. Everything else receives the frozen `Config` as an argument.
 */
import ipaddr from 'ipaddr.js';
import { getNextMillis } from 'bullmq';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseDurationMs } from './duration.js';
import { FAILED_DELIVERY_RETENTION_DAYS } from './jobs.js';
import type { RedisTarget } from './redis.js';

const DAY_MS = 86_400_000;
const DEFAULT_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,10h';

const positiveInt = (what: string) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `expected ${what}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n > 0, `expected ${what}`);

const url = (protocols: string[], form: string) =>
  z
    .string()
    .trim()
    .refine((value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    }, `expected ${form}`);

/** An origin a page may be framed by, as CSP frame-ancestors writes it (no path, no quotes). */
const FRAME_ANCESTOR = /^https?:\/\/(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?$/;

const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== ''),
);

const cidrList = commaList.refine(
  (items) => items.every((item) => ipaddr.isValidCIDR(item)),
  'expected comma-separated CIDR ranges such as 127.0.0.0/8,::1/128',
);

const durationList = commaList.transform((items, ctx) => {
  const ms = items.map(parseDurationMs);
  if (ms.length === 0 || ms.some((n) => n === undefined)) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected comma-separated durations such as 5s,5m,2h',
    });
    return z.NEVER;
  }
  return ms as number[];
});

/** `host:port` or `[ipv6]:port`. */
const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

const clusterNodes = commaList.transform((items, ctx) => {
  const nodes = items.map((item) => {
    const match = HOST_PORT.exec(item);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535) return undefined;
    return { host: match[1] ?? match[2]!, port };
  });
  if (nodes.length === 0 || nodes.some((n) => n === undefined)) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected comma-separated host:port seeds such as redis-1:6379,redis-2:6379',
    });
    return z.NEVER;
  }
  return nodes as { host: string; port: number }[];
});

/** Shard numbers: `0,2,5` or ranges `0-3`. */
const shardList = commaList.transform((items, ctx) => {
  const shards = new Set<number>();
  for (const item of items) {
    const match = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(item);
    const from = Number(match?.[1]);
    const to = Number(match?.[2] ?? match?.[1]);
    if (!match || to < from) {
      ctx.addIssue({ code: 'custom', message: 'expected shard numbers such as 0,1 or 0-3' });
      return z.NEVER;
    }
    for (let n = from; n <= to; n++) shards.add(n);
  }
  return [...shards].sort((a, b) => a - b);
});

/** A whole number, zero included (zero usually turns the feature off). */
const wholeNumber = (what: string) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `expected ${what}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n), `expected ${what}`);

/** A cron pattern as BullMQ's job scheduler reads it (5 fields, or 6 with seconds first). */
const cronPattern = z
  .string()
  .trim()
  .refine((pattern) => {
    try {
      return typeof getNextMillis(Date.now(), { pattern, tz: 'UTC' }) === 'number';
    } catch {
      return false;
    }
  }, "expected a cron pattern such as '0 3 * * *' (minute hour day month weekday)");

const timeZone = z
  .string()
  .trim()
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, 'expected an IANA time zone such as UTC or Europe/Berlin');

const signingSecret = z
  .string()
  .trim()
  .regex(
    /^whsec_[A-Za-z0-9+/]{16,}={0,2}$/,
    'expected a Standard Webhooks secret: whsec_ and base64',
  );

/** Environment variables and their defaults; the README's configuration table mirrors this. */
const envSchema = z.object({
  REDIS_URL: url(['redis:', 'rediss:'], 'a redis:// or rediss:// URL').default(
    'redis://127.0.0.1:6379',
  ),
  /** Set: a Redis Cluster, and REDIS_URL is ignored. */
  REDIS_CLUSTER_NODES: clusterNodes.optional(),
  /**
   * Where the queues live: `redis` (REDIS_URL), or `postgres` (trial mode: BullMQ's PostgreSQL
   * backend on DATABASE_URL or the embedded server). Unset: redis when REDIS_URL is set; otherwise
   * redis if one answers at the default address, else postgres.
   */
  HOOKFLEET_QUEUE_BACKEND: z.enum(['redis', 'postgres']).optional(),
  /** Unset: `start` runs an embedded PostgreSQL under HOOKFLEET_DATA_DIR. */
  DATABASE_URL: url(['postgres:', 'postgresql:'], 'a postgres:// URL').optional(),
  PORT: positiveInt('a TCP port (1-65535)')
    .refine((n) => n <= 65535, 'expected a TCP port (1-65535)')
    .default(3000),
  HOOKFLEET_API_KEYS: commaList.default([]),
  HOOKFLEET_ADMIN_USER: z.string().min(1).optional(),
  HOOKFLEET_ADMIN_PASSWORD: z.string().min(1).optional(),
  HOOKFLEET_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}.-]+$/, 'expected letters, digits, _ . - and an optional {hash-tag}')
    .default('hookfleet'),
  HOOKFLEET_QUEUE_SHARDS: positiveInt('a whole number of shards from 1 to 1024')
    .refine((n) => n <= 1024, 'expected a whole number of shards from 1 to 1024')
    .default(1),
  HOOKFLEET_WORKER_SHARDS: shardList.optional(),
  HOOKFLEET_CONCURRENCY: positiveInt('a positive whole number of parallel deliveries').default(50),
  HOOKFLEET_ALLOW_CIDRS: cidrList.default([]),
  HOOKFLEET_STALE_AFTER_DAYS: positiveInt('a positive whole number of days').default(365),
  HOOKFLEET_FAILING_DISABLE_AFTER_HOURS: positiveInt('a positive whole number of hours').default(
    120,
  ),
  HOOKFLEET_OPERATOR_WEBHOOK_URL: url(['http:', 'https:'], 'an http(s) URL').optional(),
  HOOKFLEET_OPERATOR_WEBHOOK_SECRET: signingSecret.optional(),
  HOOKFLEET_OPERATOR_ALLOW_CIDRS: cidrList.default([]),
  HOOKFLEET_PORTAL_FRAME_ANCESTORS: commaList
    .refine(
      (items) => items.every((item) => FRAME_ANCESTOR.test(item)),
      'expected comma-separated origins such as https://app.example.com,https://*.example.com',
    )
    .default([]),
  HOOKFLEET_STALE_WARNING_DAYS: wholeNumber(
    'a whole number of days (0 turns warnings off)',
  ).default(30),
  HOOKFLEET_STALE_PROBE_GRACE_HOURS: positiveInt('a positive whole number of hours').default(12),
  HOOKFLEET_SWEEP_CRON: cronPattern.default('0 3 * * *'),
  HOOKFLEET_SWEEP_TZ: timeZone.default('UTC'),
  HOOKFLEET_HOUSEKEEPING_INTERVAL_MS: positiveInt('an interval in milliseconds').default(60_000),
  HOOKFLEET_ATTEMPT_RETENTION_DAYS: positiveInt('a positive whole number of days').default(30),
  HOOKFLEET_MESSAGE_RETENTION_DAYS: positiveInt('a positive whole number of days').default(30),
  HOOKFLEET_DELIVERY_TIMEOUT_MS: positiveInt('a timeout in milliseconds').default(15_000),
  HOOKFLEET_RETRY_SCHEDULE: durationList.prefault(DEFAULT_RETRY_SCHEDULE),
  HOOKFLEET_RECORDER_FLUSH_MS: positiveInt('an interval in milliseconds').default(1000),
  HOOKFLEET_SHUTDOWN_TIMEOUT_MS: positiveInt('a timeout in milliseconds').default(30_000),
  HOOKFLEET_LOCK_DURATION_MS: positiveInt('a duration in milliseconds').default(30_000),
  HOOKFLEET_STALLED_INTERVAL_MS: positiveInt('an interval in milliseconds').default(30_000),
  HOOKFLEET_MAX_PAYLOAD_BYTES: positiveInt('a size in bytes').default(256 * 1024),
  HOOKFLEET_SEND_QUEUE_MAX_BYTES: positiveInt('a size in bytes').default(64 * 1024 * 1024),
  HOOKFLEET_DELIVERY_EVENTS: z
    .enum(['0', '1', 'false', 'true'], { message: 'expected 0, 1, false or true' })
    .default('0')
    .transform((value) => value === '1' || value === 'true'),
  HOOKFLEET_ENDPOINT_CACHE_MS: positiveInt('a duration in milliseconds').default(2000),
  HOOKFLEET_DATA_DIR: z.string().min(1).default('.hookfleet'),
  HOOKFLEET_EMBEDDED_PG_PORT: positiveInt('a TCP port (1-65535)')
    .refine((n) => n <= 65535, 'expected a TCP port (1-65535)')
    .default(54329),
  HOOKFLEET_SECRET_ROTATION_OVERLAP_MS: positiveInt('a duration in milliseconds').default(
    24 * 3600 * 1000,
  ),
  HOOKFLEET_ENDPOINT_MAX_IN_FLIGHT: wholeNumber(
    'a whole number of deliveries (0 means no cap)',
  ).default(20),
  HOOKFLEET_CIRCUIT_FAILURES: wholeNumber(
    'a whole number of failed attempts (0 turns the circuit breaker off)',
  ).default(5),
  HOOKFLEET_CIRCUIT_COOLDOWN_MS: positiveInt('a duration in milliseconds').default(10_000),
  HOOKFLEET_OWNER_QUEUE_SHARE: wholeNumber(
    'a whole number of messages (0 turns the per-owner share off)',
  ).default(100),
  HOOKFLEET_METRICS_PORT: positiveInt('a TCP port (1-65535)')
    .refine((n) => n <= 65535, 'expected a TCP port (1-65535)')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOOKFLEET_LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
});

export interface Config {
  /**
   * Where every part connects to Redis (through redis.ts): the cluster of REDIS_CLUSTER_NODES
   * when set, else the node at REDIS_URL.
   */
  readonly redis: RedisTarget;
  /** REDIS_URL as given (default redis://127.0.0.1:6379); meaningless when `redis` is a cluster. */
  readonly redisUrl: string;
  /**
   * Where the queues live (HOOKFLEET_QUEUE_BACKEND). `auto` (neither it nor REDIS_URL set): the
   * commands use Redis when one answers at `redisUrl`, else PostgreSQL (trial mode); the library
   * and tests take `auto` as Redis. See queueBackend.ts.
   */
  readonly queueBackend: 'redis' | 'postgres' | 'auto';
  /** Undefined means "use the embedded PostgreSQL" (only `hookfleet start` offers that). */
  readonly databaseUrl: string | undefined;
  readonly port: number;
  readonly apiKeys: readonly string[];
  readonly adminUser: string | undefined;
  readonly adminPassword: string | undefined;
  /**
   * Start of every Redis key. On a Redis Cluster it must not hold a {hash tag}: hookfleet adds
   * one per queue shard (queueShards.ts). Default 'hookfleet'.
   */
  readonly queuePrefix: string;
  /**
   * Shards the `messages` and `deliveries` queues are split over, so a Redis Cluster spreads
   * them over its masters; a message's jobs go to the shard its id hashes to. Default 1.
   */
  readonly queueShards: number;
  /**
   * The shards a worker serves. Default undefined: every shard up to the largest number ever
   * configured (recorded in Redis), so jobs on shards a smaller setting left behind still drain.
   */
  readonly workerShards: readonly number[] | undefined;
  /** Deliveries in flight per worker process. Default 50. */
  readonly concurrency: number;
  /**
   * Private ranges deliveries to customer endpoints may reach, e.g. 127.0.0.0/8 in tests. Cloud
   * metadata addresses stay refused whatever is listed. Default none.
   */
  readonly allowCidrs: readonly string[];
  /** Days without a success after which the sweep deactivates an endpoint. Default 365. */
  readonly staleAfterDays: number;
  /**
   * Hours an endpoint's attempts may keep failing with no success before the maintenance queue
   * disables it (reason `failing`); it is warned at half of it. Default 120, as Svix.
   */
  readonly failingDisableAfterHours: number;
  /** Where operational events (`endpoint.disabled`, …) are POSTed. Default none. */
  readonly operatorWebhookUrl: string | undefined;
  /**
   * `whsec_` secret that signs the operational events like any webhook. Default none: events are
   * then sent without a `webhook-signature` header (and a warning is logged).
   */
  readonly operatorWebhookSecret: string | undefined;
  /**
   * Private ranges only the operator webhook may reach, on top of `allowCidrs`: an internal
   * operator receiver, without opening its range to every customer endpoint. Default none.
   */
  readonly operatorAllowCidrs: readonly string[];
  /**
   * Origins allowed to show the customer portal (/portal) in a frame: the platform's own app,
   * which embeds it. Default none: the portal refuses to be framed, like the operator pages.
   */
  readonly portalFrameAncestors: readonly string[];
  /**
   * How many days before its threshold an endpoint is reported once as `endpoint.stale_warning`;
   * 0 turns warnings off. Must be below HOOKFLEET_STALE_AFTER_DAYS. Default 30.
   */
  readonly staleWarningDays: number;
  /**
   * How long a `hookfleet.ping` sent to a stale but idle endpoint has to be answered before a
   * later sweep deactivates it anyway (a failed ping needs no wait: it makes the endpoint
   * non-idle). Shorter than the daily sweep, so an unanswered probe costs one day. Default 12.
   */
  readonly staleProbeGraceHours: number;
  /** When the stale-endpoint sweep runs, as a cron pattern. Default '0 3 * * *'. */
  readonly sweepCron: string;
  /** Time zone of `sweepCron`. Default 'UTC'. */
  readonly sweepTz: string;
  /**
   * How often the maintenance queue's housekeeping runs: the reconciler (messages accepted but
   * with no job in Redis), clearing expired previous secrets, pruning ended portal sessions.
   * Default 60000.
   */
  readonly housekeepingIntervalMs: number;
  /** Attempt history older than this many days is deleted by the sweep. Default 30. */
  readonly attemptRetentionDays: number;
  /**
   * Messages (with their bodies) older than this many days are deleted by the sweep. Must outlast
   * the retry schedule plus the 14 days a failed delivery stays replayable, since both need the
   * message's bytes. Default 30.
   */
  readonly messageRetentionDays: number;
  /** Whole-attempt budget: connect, headers and body. Default 15000. */
  readonly deliveryTimeoutMs: number;
  /** Delay before each retry; its length is the number of retries. Default 5s,5m,30m,2h,5h,10h,10h. */
  readonly retryScheduleMs: readonly number[];
  /** Longest a recorded success waits before it is written to PostgreSQL. Default 1000. */
  readonly recorderFlushMs: number;
  /** Bound on a graceful shutdown. Default 30000. */
  readonly shutdownTimeoutMs: number;
  /**
   * How long a worker's claim (BullMQ lock) on a delivery lasts unless renewed; renewed every half
   * of it while the delivery runs. A worker that dies without closing (SIGKILL, lost host) leaves
   * its deliveries active until their locks expire. Default 30000.
   */
  readonly lockDurationMs: number;
  /**
   * How often each worker looks for deliveries whose worker died (lock expired) and puts them back
   * in the queue for another worker. Such a delivery is taken over within about
   * `lockDurationMs + 2 * stalledIntervalMs`, and may then reach its receiver twice. Default 30000.
   */
  readonly stalledIntervalMs: number;
  /**
   * Announce each delivery a fan-out ends as event `delivery` (job id, state, failedReason) on the
   * `deliveries` queue's event stream, next to BullMQ's own events of delivery jobs; for tests and
   * tools that follow every delivery. One stream entry per delivery. Default false.
   */
  readonly deliveryEvents: boolean;
  /** Largest accepted message payload, as JSON bytes. Default 262144 (256 KiB). */
  readonly maxPayloadBytes: number;
  /**
   * Most payload bytes of the sends waiting to be stored in one producer (the api process's
   * group commit); past it a send is refused at once with 503 `overloaded` and Retry-After,
   * rather than the process running out of memory. Default 67108864 (64 MiB).
   */
  readonly sendQueueMaxBytes: number;
  /**
   * How stale a worker's cached copy of an endpoint row may be, at most: counted from its read,
   * or from the last ping that proved change notifications are arriving. Default 2000.
   */
  readonly endpointCacheMs: number;
  /** Where the embedded PostgreSQL keeps its data. Default .hookfleet */
  readonly dataDir: string;
  /**
   * Port of the embedded PostgreSQL, on 127.0.0.1; off the standard 5432 so it never collides
   * with a PostgreSQL already on the machine. Default 54329.
   */
  readonly embeddedPgPort: number;
  /**
   * After `rotate-secret`, how long deliveries stay signed with the previous secret as well, so
   * receivers can switch without rejecting anything. Default 86400000 (24 h).
   */
  readonly secretRotationOverlapMs: number;
  /**
   * Most deliveries in flight to one endpoint across the whole fleet (every worker process), so
   * one slow or hanging receiver cannot take every worker slot. The limit itself adapts: it starts
   * at 1, doubles per success up to this, halves per failure. 0 means no cap. Default 20.
   */
  readonly endpointMaxInFlight: number;
  /**
   * Fan-outs an owner may have waiting in the `messages` queue before its further messages yield
   * to other owners' (BullMQ priorities ranked by each owner's count, so owners over their share
   * are served in turn); ownerless messages count as one owner. 0 turns it off. Default 100.
   */
  readonly ownerQueueShare: number;
  /**
   * Failed attempts in a row after which an endpoint's circuit opens: its deliveries are postponed
   * (not failed, no attempt used) until a probe succeeds; 0 turns the breaker off. Default 5.
   */
  readonly circuitFailures: number;
  /** How long an open circuit waits before its first probe; doubles per failed probe up to 5 min. Default 10000. */
  readonly circuitCooldownMs: number;
  /**
   * Where `hookfleet worker` serves its own Prometheus /metrics (delivery counters live in the
   * worker process, not the api). Default: not served.
   */
  readonly metricsPort: number | undefined;
  readonly logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /**
   * `pretty`: one readable line per log entry (time, level, message, key=value); `json`: pino's
   * JSON lines. Default: pretty when stdout is a terminal, json otherwise (files, pipes, Docker).
   */
  readonly logFormat: 'json' | 'pretty';
}

/** Validates the environment (default: `process.env`) and returns a frozen Config. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most .env tooling.
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((key) => [key, env[key]])
      .filter(([, value]) => value !== undefined && value !== ''),
  ) as Record<string, string>;
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const shown =
        present[name] === undefined ? '' : ` (got ${JSON.stringify(redact(name, present[name]))})`;
      return `${name}: ${issue.message}${shown}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  if ((e.HOOKFLEET_ADMIN_USER === undefined) !== (e.HOOKFLEET_ADMIN_PASSWORD === undefined)) {
    throw new ConfigError(
      'invalid configuration:\n  HOOKFLEET_ADMIN_USER and HOOKFLEET_ADMIN_PASSWORD must be set together',
    );
  }
  if (e.HOOKFLEET_STALE_WARNING_DAYS >= e.HOOKFLEET_STALE_AFTER_DAYS) {
    throw new ConfigError(
      'invalid configuration:\n  HOOKFLEET_STALE_WARNING_DAYS must be below HOOKFLEET_STALE_AFTER_DAYS ' +
        `(got ${e.HOOKFLEET_STALE_WARNING_DAYS} and ${e.HOOKFLEET_STALE_AFTER_DAYS})`,
    );
  }
  if (e.REDIS_CLUSTER_NODES && /[{}]/.test(e.HOOKFLEET_QUEUE_PREFIX)) {
    throw new ConfigError(
      'invalid configuration:\n  HOOKFLEET_QUEUE_PREFIX must not hold a {hash tag} on a Redis Cluster ' +
        `(got ${JSON.stringify(e.HOOKFLEET_QUEUE_PREFIX)}): hookfleet tags each queue shard itself, ` +
        'and one tag would put every key on one node',
    );
  }
  const messagesNeededMs =
    e.HOOKFLEET_RETRY_SCHEDULE.reduce((sum, ms) => sum + ms, 0) +
    FAILED_DELIVERY_RETENTION_DAYS * DAY_MS;
  if (e.HOOKFLEET_MESSAGE_RETENTION_DAYS * DAY_MS <= messagesNeededMs) {
    throw new ConfigError(
      'invalid configuration:\n  HOOKFLEET_MESSAGE_RETENTION_DAYS must outlast the retry schedule ' +
        `plus the ${FAILED_DELIVERY_RETENTION_DAYS} days a failed delivery stays replayable ` +
        `(got ${e.HOOKFLEET_MESSAGE_RETENTION_DAYS} days; at least ${Math.floor(messagesNeededMs / DAY_MS) + 1} needed)`,
    );
  }
  const redis: RedisTarget = e.REDIS_CLUSTER_NODES
    ? Object.freeze({
        kind: 'cluster',
        nodes: Object.freeze(e.REDIS_CLUSTER_NODES.map((n) => Object.freeze(n))),
      })
    : Object.freeze({ kind: 'node', url: e.REDIS_URL });
  return Object.freeze({
    redis,
    redisUrl: e.REDIS_URL,
    queueBackend: e.HOOKFLEET_QUEUE_BACKEND ?? (present.REDIS_URL === undefined ? 'auto' : 'redis'),
    databaseUrl: e.DATABASE_URL,
    port: e.PORT,
    apiKeys: Object.freeze(e.HOOKFLEET_API_KEYS),
    adminUser: e.HOOKFLEET_ADMIN_USER,
    adminPassword: e.HOOKFLEET_ADMIN_PASSWORD,
    queuePrefix: e.HOOKFLEET_QUEUE_PREFIX,
    queueShards: e.HOOKFLEET_QUEUE_SHARDS,
    workerShards: e.HOOKFLEET_WORKER_SHARDS && Object.freeze(e.HOOKFLEET_WORKER_SHARDS),
    concurrency: e.HOOKFLEET_CONCURRENCY,
    allowCidrs: Object.freeze(e.HOOKFLEET_ALLOW_CIDRS),
    staleAfterDays: e.HOOKFLEET_STALE_AFTER_DAYS,
    failingDisableAfterHours: e.HOOKFLEET_FAILING_DISABLE_AFTER_HOURS,
    operatorWebhookUrl: e.HOOKFLEET_OPERATOR_WEBHOOK_URL,
    operatorWebhookSecret: e.HOOKFLEET_OPERATOR_WEBHOOK_SECRET,
    operatorAllowCidrs: Object.freeze(e.HOOKFLEET_OPERATOR_ALLOW_CIDRS),
    portalFrameAncestors: Object.freeze(e.HOOKFLEET_PORTAL_FRAME_ANCESTORS),
    staleWarningDays: e.HOOKFLEET_STALE_WARNING_DAYS,
    staleProbeGraceHours: e.HOOKFLEET_STALE_PROBE_GRACE_HOURS,
    sweepCron: e.HOOKFLEET_SWEEP_CRON,
    sweepTz: e.HOOKFLEET_SWEEP_TZ,
    housekeepingIntervalMs: e.HOOKFLEET_HOUSEKEEPING_INTERVAL_MS,
    attemptRetentionDays: e.HOOKFLEET_ATTEMPT_RETENTION_DAYS,
    messageRetentionDays: e.HOOKFLEET_MESSAGE_RETENTION_DAYS,
    deliveryTimeoutMs: e.HOOKFLEET_DELIVERY_TIMEOUT_MS,
    retryScheduleMs: Object.freeze(e.HOOKFLEET_RETRY_SCHEDULE),
    recorderFlushMs: e.HOOKFLEET_RECORDER_FLUSH_MS,
    shutdownTimeoutMs: e.HOOKFLEET_SHUTDOWN_TIMEOUT_MS,
    lockDurationMs: e.HOOKFLEET_LOCK_DURATION_MS,
    stalledIntervalMs: e.HOOKFLEET_STALLED_INTERVAL_MS,
    maxPayloadBytes: e.HOOKFLEET_MAX_PAYLOAD_BYTES,
    sendQueueMaxBytes: e.HOOKFLEET_SEND_QUEUE_MAX_BYTES,
    deliveryEvents: e.HOOKFLEET_DELIVERY_EVENTS,
    endpointCacheMs: e.HOOKFLEET_ENDPOINT_CACHE_MS,
    dataDir: e.HOOKFLEET_DATA_DIR,
    embeddedPgPort: e.HOOKFLEET_EMBEDDED_PG_PORT,
    secretRotationOverlapMs: e.HOOKFLEET_SECRET_ROTATION_OVERLAP_MS,
    endpointMaxInFlight: e.HOOKFLEET_ENDPOINT_MAX_IN_FLIGHT,
    ownerQueueShare: e.HOOKFLEET_OWNER_QUEUE_SHARE,
    circuitFailures: e.HOOKFLEET_CIRCUIT_FAILURES,
    circuitCooldownMs: e.HOOKFLEET_CIRCUIT_COOLDOWN_MS,
    metricsPort: e.HOOKFLEET_METRICS_PORT,
    logLevel: e.LOG_LEVEL,
    logFormat: e.HOOKFLEET_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json'),
  });
}

/**
 * Whether a failing command should print its error's stack trace as well as its one-line
 * message: with `--verbose` (main.ts) or LOG_LEVEL=debug/trace. Read here, before any command
 * loads its config, because a failure may come from loading it.
 */
export function wantsStackTraces(env: Record<string, string | undefined> = process.env): boolean {
  return env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace';
}

/** Secrets must not be echoed back in an error message. */
function redact(name: string, value: string | undefined): string | undefined {
  return /KEY|PASSWORD|SECRET|URL/.test(name) && value !== undefined ? '<redacted>' : value;
}

/** The variables this module reads, for docs checks and `--help` output. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);
