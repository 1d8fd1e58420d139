/**
 * `hookfleet <command>`: one file per command in this folder, each exporting
 * `run(argv): Promise<number>` (the exit code). Loaded lazily so `hookfleet --help` stays fast.
 * A command fails by throwing; the error is printed as one line on stderr and its kind decides
 * the exit code (exitCodes.ts). `--verbose` (anywhere on the line) or LOG_LEVEL=debug adds the
 * error's stack trace after that line.
 */
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { wantsStackTraces } from '../config.js';
import { ConfigError, HookfleetError } from '../errors.js';
import { isUnavailableError } from '../unavailable.js';
import { commands } from './commands.js';
import { errorText } from './errorText.js';
import { EXIT_CODES_HELP, EXIT_USAGE, exitCodeFor } from './exitCodes.js';

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `Usage: hookfleet <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'hookfleet <command> --help' for a command's options and environment.\nAdd --verbose to see the stack trace behind a failure.\n\n${EXIT_CODES_HELP}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    console.error(`hookfleet: unknown command '${name}' (see 'hookfleet --help')`);
    return EXIT_USAGE;
  }
  return (await command.load()).run(rest);
}

const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose') || wantsStackTraces();
main(argv.filter((arg) => arg !== '--verbose')).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`hookfleet: ${oneLine(describe(error))}`);
    if (verbose && error instanceof Error && error.stack) console.error(error.stack);
    // Exit now: a command that failed half-way through starting may hold connections that would
    // keep the process alive (and reconnecting) after its one line.
    process.exit(exitCodeFor(error));
  },
);

function describe(error: unknown): string {
  if (error instanceof ConfigError || error instanceof HookfleetError) return error.message;
  // Drizzle wraps driver errors in "Failed query: <the whole SQL>"; the driver's error says more.
  const failedQuery = error instanceof DrizzleQueryError;
  const cause = failedQuery && error.cause instanceof Error ? error.cause : error;
  const detail = errorText(cause);
  if (isUnavailableError(error)) {
    return failedQuery
      ? `cannot reach PostgreSQL (${detail}); check DATABASE_URL`
      : `cannot reach PostgreSQL or Redis (${detail}); check DATABASE_URL and REDIS_URL`;
  }
  return `unexpected error: ${detail}`;
}

/** Scripts read the first line of stderr; a multi-line message is folded into it. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
