/**
 * Log lines for a person at a terminal: `12:04:05.123 WARN  message key=value …`, one line per
 * entry. pino writes its JSON line here and this reformats it, so the JSON form (for files, pipes
 * and log shippers) stays what it was. Stack traces of logged errors are shown at debug level
 * only; otherwise an error is its message.
 */
const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every line has or that say nothing to a reader at a terminal. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function errorSummary(value: unknown, withStack: boolean): string {
  if (typeof value !== 'object' || value === null) return formatValue(value);
  const { message, code, stack } = value as { message?: string; code?: string; stack?: string };
  const withCode = code && !message?.includes(code) ? `${message ?? ''} (${code})` : message;
  const text = formatValue(withCode?.trim() || 'error');
  return withStack && stack ? `${text}\n${stack.replace(/^/gm, '    ')}` : text;
}

/** One JSON log line from pino as one readable line (plus a stack, when `withStack`). */
export function formatLogLine(json: string, withStack = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const time = new Date(Number(entry.time)).toISOString().slice(11, 23);
  const level = LEVELS[Number(entry.level)] ?? String(entry.level);
  const fields = Object.entries(entry)
    .filter(([key]) => !HIDDEN.has(key))
    .map(([key, value]) =>
      key === 'err' ? `err=${errorSummary(value, withStack)}` : `${key}=${formatValue(value)}`,
    );
  return [time, level, typeof entry.msg === 'string' ? entry.msg : '', ...fields]
    .filter(Boolean)
    .join(' ');
}

/** A pino destination that writes readable lines to `out`. */
export function prettyDestination(
  withStack: boolean,
  out: NodeJS.WritableStream = process.stdout,
): { write(line: string): void } {
  return { write: (line) => void out.write(`${formatLogLine(line, withStack)}\n`) };
}
