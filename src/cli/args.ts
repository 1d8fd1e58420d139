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
import { parseDurationMs } from '../duration.js';
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

const RELATIVE_TIME = /^\d+(?:\.\d+)?(?:s|m|h|d)$/;
/** A date (midnight UTC), or a date-time with Z or an offset: a time without a zone is ambiguous. */
const ISO_TIME =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i;

/**
 * A `--since` value: a relative age (`30m`, `2h`, `3d`: that long before `now`) or an ISO 8601
 * date or date-time with a time zone (`2024-05-01`, `2024-05-01T12:00:00Z`). Never in the future.
 */
export function parseSince(command: string, text: string, now = new Date()): Date {
  let since: Date | undefined;
  if (RELATIVE_TIME.test(text)) {
    const ms = parseDurationMs(text);
    if (ms !== undefined) since = new Date(now.getTime() - ms);
  } else if (ISO_TIME.test(text)) {
    const parsed = Date.parse(text.replace(' ', 'T'));
    if (!Number.isNaN(parsed)) since = new Date(parsed);
  }
  if (since === undefined || Number.isNaN(since.getTime())) {
    throw badArguments(
      command,
      `--since takes an age such as 30m, 2h or 3d, or an ISO 8601 time with a zone such as 2024-05-01T12:00:00Z (got '${text}')`,
    );
  }
  if (since.getTime() > now.getTime()) {
    throw badArguments(command, `--since ${text} is in the future`);
  }
  return since;
}

/** A whole number from `min` to `max` given to `flag`. */
export function parseWholeNumber(
  command: string,
  flag: string,
  text: string,
  min: number,
  max: number,
): number {
  const value = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw badArguments(
      command,
      `${flag} takes a whole number from ${min} to ${max} (got '${text}')`,
    );
  }
  return value;
}

/** A usage error: one line naming the problem and where to read more. Exit code 2. */
export function badArguments(command: string, message: string): HookfleetError {
  return new HookfleetError(
    'bad_arguments',
    `${command}: ${message} (see 'hookfleet ${command.split(' ')[0]} --help')`,
  );
}
