/**
 * `hookfleet <command>`: one file per command in this folder, each exporting
 * `run(argv): Promise<number>` (the exit code). Loaded lazily so `hookfleet --help` stays fast.
 */
import { ConfigError, HookfleetError } from '../errors.js';
import { commands } from './commands.js';

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `Usage: hookfleet <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'hookfleet <command> --help' for a command's options and environment.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`hookfleet: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof HookfleetError) {
      console.error(`hookfleet: ${error.message}`);
    } else {
      console.error('hookfleet: unexpected error:', error);
    }
    process.exitCode = 1;
  },
);
