import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * pino: JSON lines on stdout, cheap enough for the delivery hot path. Redaction is a second line
 * of defence; secrets are kept out of log calls in the first place.
 */
export function createLogger(config: Pick<Config, 'logLevel'>, name = 'hookfleet'): Logger {
  return pino({
    name,
    level: config.logLevel,
    redact: {
      paths: ['secret', '*.secret', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  });
}
