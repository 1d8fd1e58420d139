import { describe, expect, it } from 'vitest';
import { ensureCredentials } from '../../src/api/auth.js';
import { bannerLines } from '../../src/cli/banner.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

const logger = createLogger({ logLevel: 'silent' });

describe('bannerLines', () => {
  it('shows generated credentials and a curl that uses the generated key', () => {
    const loaded = loadConfig({});
    const config = ensureCredentials(loaded, logger);
    const text = bannerLines({ title: 'hookfleet', port: 3000, loaded, config }).join('\n');
    expect(text).toContain('http://127.0.0.1:3000/v1');
    expect(text).toContain('http://127.0.0.1:3000/admin/queues');
    expect(text).toContain(`API key     ${config.apiKeys[0]}`);
    expect(text).toContain(`password ${config.adminPassword}`);
    expect(text).toContain(`-H 'Authorization: Bearer ${config.apiKeys[0]}'`);
  });

  it('never prints credentials the environment set', () => {
    const loaded = loadConfig({
      HOOKFLEET_API_KEYS: 'configured-key',
      HOOKFLEET_ADMIN_USER: 'ops',
      HOOKFLEET_ADMIN_PASSWORD: 'configured-password',
    });
    const text = bannerLines({ title: 'hookfleet api', port: 8080, loaded, config: loaded }).join(
      '\n',
    );
    expect(text).not.toContain('configured-key');
    expect(text).not.toContain('configured-password');
    expect(text).toContain("Bearer <a key from HOOKFLEET_API_KEYS>'");
  });

  it('puts trial mode in a box at the top, saying why and what to use in production', () => {
    const auto = loadConfig({});
    const lines = bannerLines({
      title: 'hookfleet',
      port: 3000,
      loaded: auto,
      config: auto,
      queueBackend: 'postgres',
    });
    expect(lines[1]).toBe('hookfleet is up');
    expect(lines[3]).toContain('TRIAL MODE: the queues run on PostgreSQL, not Redis');
    const text = lines.join('\n');
    expect(text).toContain('no Redis answers at redis://127.0.0.1:6379');
    expect(text).toContain('For production, run Redis and set REDIS_URL');
    const forced = loadConfig({ HOOKFLEET_QUEUE_BACKEND: 'postgres' });
    expect(
      bannerLines({
        title: 'hookfleet',
        port: 3000,
        loaded: forced,
        config: forced,
        queueBackend: 'postgres',
      }).join('\n'),
    ).toContain('(HOOKFLEET_QUEUE_BACKEND=postgres)');
  });

  it('says nothing of trial mode on Redis', () => {
    const loaded = loadConfig({});
    const text = bannerLines({
      title: 'hookfleet',
      port: 3000,
      loaded,
      config: loaded,
      queueBackend: 'redis',
    }).join('\n');
    expect(text).not.toContain('TRIAL MODE');
  });
});
