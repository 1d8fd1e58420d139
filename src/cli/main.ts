/**
 * `hookfleet <command>`: one file per command in this folder, each exporting
 * `run(argv): Promise<number>` (the exit code). Loaded lazily so `hookfleet --help` stays fast.
 * A command fails by throwing; the error is printed as one line on stderr and its kind decides
 * the exit code (exitCodes.ts).
 */
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { ConfigError, HookfleetError } from '../errors.js';
import { isUnavailableError } from '../unavailable.js';
import { commands } from './commands.js';
import { EXIT_CODES_HELP, EXIT_USAGE, exitCodeFor } from './exitCodes.js';

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `Usage: hookfleet <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'hookfleet <command> --help' for a command's options and environment.\n\n${EXIT_CODES_HELP}`;
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`hookfleet: ${oneLine(describe(error))}`);
    process.exitCode = exitCodeFor(error);
  },
);

function describe(error: unknown): string {
  if (error instanceof ConfigError || error instanceof HookfleetError) return error.message;
  // Drizzle wraps driver errors in "Failed query: <the whole SQL>"; the driver's error says more.
  const failedQuery = error instanceof DrizzleQueryError;
  const cause = failedQuery && error.cause instanceof Error ? error.cause : error;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const detail = cause instanceof Error ? cause.message || code || cause.name : String(cause);
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
