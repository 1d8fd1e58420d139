/**
 * Exit codes of every `hookfleet` command, the same for all of them so scripts can branch on
 * them. Errors reach main.ts as exceptions; their code decides the exit code.
 */
import { ConfigError, HookfleetError } from '../errors.js';

export const EXIT_OK = 0;
/** Something failed that is not the caller's doing: a service unreachable, a refused state, a bug. */
export const EXIT_FAILURE = 1;
/** Bad flags or arguments: fix the command line. */
export const EXIT_USAGE = 2;
/** The endpoint or message named on the command line does not exist. */
export const EXIT_NOT_FOUND = 3;

/** For `hookfleet --help` (the README's command-line section says the same). */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  operational failure (PostgreSQL or Redis unreachable, bad configuration, refused, unexpected)
  2  usage error (unknown command or flag, bad argument)
  3  not found (unknown endpoint or message id)`;

/** HookfleetError codes that mean the command line itself was wrong. */
const USAGE_CODES = new Set([
  'bad_arguments',
  'validation_failed',
  'payload_too_large',
  'malformed_json',
]);

export function exitCodeFor(error: unknown): number {
  if (error instanceof ConfigError) return EXIT_FAILURE;
  if (!(error instanceof HookfleetError)) return EXIT_FAILURE;
  if (error.code === 'not_found') return EXIT_NOT_FOUND;
  return USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE;
}
