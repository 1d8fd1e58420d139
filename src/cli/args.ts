import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type HelpOption = { help: { type: 'boolean'; short: 'h' } };
type Parsed<T extends Options> = ReturnType<
  typeof parseArgs<{
    args: string[];
    options: T & HelpOption;
    allowPositionals: true;
    strict: true;
  }>
>;
import { HookfleetError } from '../errors.js';

/** node:util parseArgs, with unknown flags turned into a one-line error instead of a stack trace. */
export function parseCommandArgs<T extends Options>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
): Parsed<T> {
  const help: HelpOption = { help: { type: 'boolean', short: 'h' } };
  let parsed: Parsed<T>;
  try {
    parsed = parseArgs<{
      args: string[];
      options: T & HelpOption;
      allowPositionals: true;
      strict: true;
    }>({
      args: argv,
      options: { ...options, ...help },
      // Positionals are refused below unless the command takes them.
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new HookfleetError(
      'bad_arguments',
      `${command}: ${(error as Error).message} (see 'hookfleet ${command} --help')`,
    );
  }
  if (!allowPositionals && parsed.positionals.length > 0) {
    throw new HookfleetError(
      'bad_arguments',
      `${command}: unexpected argument '${parsed.positionals[0]}' (see 'hookfleet ${command} --help')`,
    );
  }
  return parsed;
}
