import type { Hono } from 'hono';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { createApp, type ApiDeps } from '../../src/api/app.js';
import type { Resolver } from '../../src/delivery/addressGuard.js';
import { createTestFleet, type TestFleet } from './testFleet.js';

export const API_KEY = 'k1';
export const ADMIN = { user: 'admin', password: 'pw-for-tests' };

/** The environment every API test starts from, on top of the test fleet's. */
export const API_ENV = {
  HOOKFLEET_API_KEYS: API_KEY,
  HOOKFLEET_ADMIN_USER: ADMIN.user,
  HOOKFLEET_ADMIN_PASSWORD: ADMIN.password,
};

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface CallOptions {
  /** Sent as JSON unless a string (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Leave out the Authorization header. */
  anonymous?: boolean;
}

export interface ApiHarness {
  fleet: TestFleet;
  app: Hono;
  deps: ApiDeps;
  /** One in-process request through app.request(); JSON bodies are parsed. */
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: CallOptions,
  ): Promise<ApiResponse<T>>;
  /** Closes the fleet (workers, producer, database, queue keys) and the API's Redis connection. */
  close(): Promise<void>;
}

/**
 * A test fleet (own database, queue prefix, producer, workers on demand) with the API app in
 * front of it, called in-process. `resolve` stands in for DNS (this machine has no outside DNS).
 */
export async function createApiHarness(
  env: Record<string, string> = {},
  options: { resolve?: Resolver } = {},
): Promise<ApiHarness> {
  const fleet = await createTestFleet({ ...API_ENV, ...env });
  const redis = new Redis(fleet.config.redisUrl, { maxRetriesPerRequest: 1 });
  await redis.ping();
  const deps: ApiDeps = {
    config: fleet.config,
    logger: createLogger(fleet.config),
    dbClient: fleet.db,
    producer: fleet.producer,
    metrics: createMetrics({ defaultMetrics: false }),
    redis,
    ...(options.resolve && { resolve: options.resolve }),
  };
  const app = createApp(deps);
  return {
    fleet,
    app,
    deps,
    call: (method, path, callOptions) => callApp(app, method, path, callOptions),
    async close() {
      await fleet.close();
      await redis.quit();
    },
  };
}

export async function callApp<T = Record<string, unknown>>(
  app: Hono,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (!options.anonymous) headers.authorization = `Bearer ${API_KEY}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await app.request(path, {
    method,
    headers: { ...headers, ...options.headers },
    body,
  });
  const text = await response.text();
  let parsed: unknown = text;
  if (response.headers.get('content-type')?.includes('application/json')) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}
