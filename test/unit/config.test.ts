import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { queueSchemaName } from '../../src/postgresQueueBackend.js';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      databaseUrl: undefined,
      port: 3000,
      queuePrefix: 'hookfleet',
      concurrency: 50,
      allowCidrs: [],
      operatorAllowCidrs: [],
      staleAfterDays: 365,
      deliveryTimeoutMs: 15_000,
      maxPayloadBytes: 262_144,
    });
    // Svix-like: seconds, then minutes, then hours; about a day in all.
    expect(config.retryScheduleMs[0]).toBe(5_000);
    const totalHours = config.retryScheduleMs.reduce((a, b) => a + b, 0) / 3_600_000;
    expect(totalHours).toBeGreaterThan(20);
    expect(totalHours).toBeLessThan(36);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('parses lists and durations', () => {
    const config = loadConfig({
      HOOKFLEET_API_KEYS: 'a, b,,c',
      HOOKFLEET_ALLOW_CIDRS: '127.0.0.0/8,::1/128',
      HOOKFLEET_RETRY_SCHEDULE: '500ms,2s,1m',
      HOOKFLEET_QUEUE_PREFIX: '{hookfleet}',
    });
    expect(config.apiKeys).toEqual(['a', 'b', 'c']);
    expect(config.allowCidrs).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.retryScheduleMs).toEqual([500, 2000, 60_000]);
    expect(config.queuePrefix).toBe('{hookfleet}');
  });

  it.each([
    ['PORT', 'eighty', /PORT: expected a TCP port/],
    ['PORT', '70000', /PORT: expected a TCP port/],
    ['REDIS_URL', 'localhost:6379', /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL: expected a postgres:\/\/ URL/],
    ['HOOKFLEET_CONCURRENCY', '0', /HOOKFLEET_CONCURRENCY: expected a positive whole number/],
    [
      'HOOKFLEET_ALLOW_CIDRS',
      '127.0.0.1',
      /HOOKFLEET_ALLOW_CIDRS: expected comma-separated CIDR ranges/,
    ],
    [
      'HOOKFLEET_OPERATOR_ALLOW_CIDRS',
      '10.0.0.0/8,ops.internal',
      /HOOKFLEET_OPERATOR_ALLOW_CIDRS: expected comma-separated CIDR ranges/,
    ],
    [
      'HOOKFLEET_STALE_AFTER_DAYS',
      '-3',
      /HOOKFLEET_STALE_AFTER_DAYS: expected a positive whole number of days/,
    ],
    [
      'HOOKFLEET_FAILING_DISABLE_AFTER_HOURS',
      '0',
      /HOOKFLEET_FAILING_DISABLE_AFTER_HOURS: expected a positive whole number of hours/,
    ],
    [
      'HOOKFLEET_RETRY_SCHEDULE',
      '5 minutes',
      /HOOKFLEET_RETRY_SCHEDULE: expected comma-separated durations/,
    ],
    ['HOOKFLEET_QUEUE_PREFIX', 'has space', /HOOKFLEET_QUEUE_PREFIX: expected letters/],
    ['REDIS_CLUSTER_NODES', 'redis-1', /REDIS_CLUSTER_NODES: expected comma-separated host:port/],
    [
      'REDIS_CLUSTER_NODES',
      'redis-1:6379,redis-2:99999',
      /REDIS_CLUSTER_NODES: expected comma-separated host:port/,
    ],
    [
      'REDIS_CLUSTER_NODES',
      'redis://redis-1:6379',
      /REDIS_CLUSTER_NODES: expected comma-separated host:port/,
    ],
    [
      'HOOKFLEET_OPERATOR_WEBHOOK_URL',
      'not a url',
      /HOOKFLEET_OPERATOR_WEBHOOK_URL: expected an http\(s\) URL/,
    ],
  ])('stops on a bad %s, naming the variable and the expected form', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('connects to the node at REDIS_URL unless REDIS_CLUSTER_NODES names a cluster', () => {
    expect(loadConfig({}).redis).toEqual({ kind: 'node', url: 'redis://127.0.0.1:6379' });
    expect(loadConfig({ REDIS_URL: 'redis://cache:6380/2' }).redis).toEqual({
      kind: 'node',
      url: 'redis://cache:6380/2',
    });
    const config = loadConfig({
      REDIS_URL: 'redis://ignored:6379',
      REDIS_CLUSTER_NODES: 'redis-1:7000, 10.0.0.2:7001,[::1]:7002',
    });
    expect(config.redis).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'redis-1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
  });

  it('chooses the queue backend: as told, Redis when REDIS_URL is set, else auto', () => {
    expect(loadConfig({}).queueBackend).toBe('auto');
    expect(loadConfig({ REDIS_URL: 'redis://10.0.0.1:6379' }).queueBackend).toBe('redis');
    expect(loadConfig({ HOOKFLEET_QUEUE_BACKEND: 'postgres' }).queueBackend).toBe('postgres');
    expect(
      loadConfig({ HOOKFLEET_QUEUE_BACKEND: 'postgres', REDIS_URL: 'redis://10.0.0.1:6379' })
        .queueBackend,
    ).toBe('postgres');
    expect(loadConfig({ HOOKFLEET_QUEUE_BACKEND: 'redis' }).queueBackend).toBe('redis');
    expect(() => loadConfig({ HOOKFLEET_QUEUE_BACKEND: 'sqlite' })).toThrow(
      /HOOKFLEET_QUEUE_BACKEND: .*"sqlite"/,
    );
  });

  it('names the PostgreSQL schema of the queues after the queue prefix', () => {
    expect(queueSchemaName('hookfleet')).toBe('hookfleet_queues');
    expect(queueSchemaName('{hf-Test.1}')).toBe('_hf_test_1__queues');
    expect(queueSchemaName('9lives')).toBe('q_9lives_queues');
    expect(queueSchemaName('x'.repeat(100))).toHaveLength(63);
  });

  it('keeps the operator allow-list apart from the customer one', () => {
    const config = loadConfig({
      HOOKFLEET_ALLOW_CIDRS: '192.168.0.0/16',
      HOOKFLEET_OPERATOR_ALLOW_CIDRS: ' 10.20.0.0/16 , fd00:ab::/32 ',
    });
    expect(config.allowCidrs).toEqual(['192.168.0.0/16']);
    expect(config.operatorAllowCidrs).toEqual(['10.20.0.0/16', 'fd00:ab::/32']);
    expect(Object.isFrozen(config.operatorAllowCidrs)).toBe(true);
  });

  it('does not echo secrets back in the error', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db' })).toThrow(/<redacted>/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db' })).not.toThrow(/hunter2/);
  });

  it('keeps messages longer than the retry schedule plus the failed-delivery retention', () => {
    expect(loadConfig({}).messageRetentionDays).toBe(30);
    // The default schedule is about 28 hours, plus 14 days replayable: 16 days at least.
    expect(() => loadConfig({ HOOKFLEET_MESSAGE_RETENTION_DAYS: '15' })).toThrow(
      /HOOKFLEET_MESSAGE_RETENTION_DAYS must outlast .*at least 16 needed/,
    );
    expect(loadConfig({ HOOKFLEET_MESSAGE_RETENTION_DAYS: '16' }).messageRetentionDays).toBe(16);
    expect(() =>
      loadConfig({ HOOKFLEET_MESSAGE_RETENTION_DAYS: '16', HOOKFLEET_RETRY_SCHEDULE: '3d' }),
    ).toThrow(/at least 18 needed/);
  });

  it('requires the admin user and password together', () => {
    expect(() => loadConfig({ HOOKFLEET_ADMIN_USER: 'ops' })).toThrow(/must be set together/);
  });
});
