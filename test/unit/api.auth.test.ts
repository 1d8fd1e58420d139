import { Hono } from 'hono';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ensureCredentials, matchesAny, requireAdmin, requireApiKey } from '../../src/api/auth.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('ensureCredentials', () => {
  it('generates an API key and dashboard credentials when none are set, and prints them once', () => {
    const { logger, lines } = capturingLogger();
    const config = ensureCredentials(loadConfig({}), logger);
    expect(config.apiKeys).toHaveLength(1);
    expect(config.apiKeys[0]).toMatch(/^hfk_[A-Za-z0-9_-]{32}$/);
    expect(config.adminUser).toBe('admin');
    expect(config.adminPassword!.length).toBeGreaterThanOrEqual(20);
    expect(Object.isFrozen(config)).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      generatedApiKey: config.apiKeys[0],
      generatedAdminUser: 'admin',
      generatedAdminPassword: config.adminPassword,
    });
    expect(String(lines[0]!.msg)).toContain('HOOKFLEET_API_KEYS');
  });

  it('generates only what is missing', () => {
    const { logger, lines } = capturingLogger();
    const config = ensureCredentials(loadConfig({ HOOKFLEET_API_KEYS: 'a,b' }), logger);
    expect(config.apiKeys).toEqual(['a', 'b']);
    expect(config.adminPassword).toBeDefined();
    expect(lines[0]?.generatedApiKey).toBeUndefined();
  });

  it('returns a config that has both unchanged, printing nothing', () => {
    const { logger, lines } = capturingLogger();
    const loaded = loadConfig({
      HOOKFLEET_API_KEYS: 'k',
      HOOKFLEET_ADMIN_USER: 'u',
      HOOKFLEET_ADMIN_PASSWORD: 'p',
    });
    expect(ensureCredentials(loaded, logger)).toBe(loaded);
    expect(lines).toHaveLength(0);
  });

  it('generates different credentials each time', () => {
    const { logger } = capturingLogger();
    const a = ensureCredentials(loadConfig({}), logger);
    const b = ensureCredentials(loadConfig({}), logger);
    expect(a.apiKeys[0]).not.toBe(b.apiKeys[0]);
    expect(a.adminPassword).not.toBe(b.adminPassword);
  });
});

describe('matchesAny', () => {
  it('matches any configured key, whatever the lengths involved', () => {
    expect(matchesAny('second', ['first', 'second'])).toBe(true);
    expect(matchesAny('secon', ['first', 'second'])).toBe(false);
    expect(matchesAny('x'.repeat(10_000), ['x'])).toBe(false);
    expect(matchesAny('', ['a'])).toBe(false);
    expect(matchesAny('a', [])).toBe(false);
  });
});

describe('auth middleware', () => {
  const app = new Hono();
  app.use('/v1/*', requireApiKey(['k1', 'k2']));
  app.get('/v1/x', (c) => c.text('ok'));
  app.use('/admin/*', requireAdmin('admin', 'p:w'));
  app.get('/admin/x', (c) => c.text('ok'));
  const get = (path: string, authorization?: string) =>
    app.request(path, { headers: authorization === undefined ? {} : { authorization } });

  it('lets a request with any configured Bearer key through, case-insensitively on the scheme', async () => {
    expect((await get('/v1/x', 'Bearer k2')).status).toBe(200);
    expect((await get('/v1/x', 'bearer k1')).status).toBe(200);
  });

  it('answers 401 with a Bearer challenge otherwise', async () => {
    for (const header of [undefined, 'Bearer', 'Bearer k3', 'Token k1', 'Bearer k1 k2']) {
      const res = await get('/v1/x', header);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await res.json()).toMatchObject({ code: 'unauthorized' });
    }
  });

  it('lets the admin in with basic auth (a colon in the password is fine), nobody else', async () => {
    const basic = (pair: string) => `Basic ${Buffer.from(pair).toString('base64')}`;
    expect((await get('/admin/x', basic('admin:p:w'))).status).toBe(200);
    for (const header of [
      undefined,
      basic('admin:p'),
      basic('root:p:w'),
      basic('adminp:w'),
      'Basic',
      'Bearer k1',
    ]) {
      const res = await get('/admin/x', header);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    }
  });

  it('refuses everyone when no credentials are configured', async () => {
    const open = new Hono();
    open.use('*', requireApiKey([]));
    open.get('/', (c) => c.text('ok'));
    expect((await open.request('/', { headers: { authorization: 'Bearer ' } })).status).toBe(401);
    const noAdmin = new Hono();
    noAdmin.use('*', requireAdmin(undefined, undefined));
    noAdmin.get('/', (c) => c.text('ok'));
    expect(
      (await noAdmin.request('/', { headers: { authorization: `Basic ${btoa(':')}` } })).status,
    ).toBe(401);
  });
});
