import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { prettyDestination } from './prettyLog.js';

export type { Logger };

/**
 * pino: JSON lines on stdout, cheap enough for the delivery hot path; readable lines instead when
 * `logFormat` is pretty (a terminal, by default; see prettyLog.ts). Redaction is a second line
 * of defence; secrets are kept out of log calls in the first place.
 */
export function createLogger(
  config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logFormat'>>,
  name = 'hookfleet',
): Logger {
  const options = {
    name,
    level: config.logLevel,
    redact: {
      paths: ['secret', '*.secret', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  };
  if (config.logFormat !== 'pretty') return pino(options);
  const withStack = config.logLevel === 'debug' || config.logLevel === 'trace';
  return pino(options, prettyDestination(withStack));
}

/** `url` without its password, for log lines and messages a user may paste somewhere. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(an invalid URL)';
  }
}
