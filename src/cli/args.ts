import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HookfleetError } from '../errors.js';

/** node:util parseArgs, with unknown flags turned into a one-line error instead of a stack trace. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    throw new HookfleetError('bad_arguments', `${command}: ${(error as Error).message} (see 'hookfleet ${command} --help')`);
  }
}
