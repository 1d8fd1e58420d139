import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type HelpOption = { help: { type: 'boolean'; short: 'h' } };
type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ options: T & HelpOption; allowPositionals: true; strict: true }>>;
import { HookfleetError } from '../errors.js';

/** node:util parseArgs, with unknown flags turned into a one-line error instead of a stack trace. */
export function parseCommandArgs<T extends Options>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
): Parsed<T> {
  const help: HelpOption = { help: { type: 'boolean', short: 'h' } };
  try {
    return parseArgs({ args: argv, options: { ...options, ...help }, allowPositionals, strict: true }) as Parsed<T>;
  } catch (error) {
    throw new HookfleetError('bad_arguments', `${command}: ${(error as Error).message} (see 'hookfleet ${command} --help')`);
  }
}
