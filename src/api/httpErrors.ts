/**
 * How the API answers when something goes wrong: always `{code, detail}` (plus `fields` for
 * validation errors), never a stack trace. Known errors keep their status; anything else is a
 * bare 500 whose id is logged with the error, so an operator can find it from a client's report.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { HookfleetError, type FieldProblem } from '../errors.js';
import type { Logger } from '../logger.js';
import { isUnavailableError, RETRY_AFTER_HEADERS, unavailable } from '../unavailable.js';

export interface ErrorBody {
  code: string;
  detail: string;
  fields?: FieldProblem[];
}

/** Turns any thrown value into the response; unknown errors are logged with an id and answered 500. */
export function errorResponse(c: Context, error: unknown, logger: Logger): Response {
  if (error instanceof HookfleetError) return known(c, error);
  if (isUnavailableError(error)) {
    logger.warn(
      { err: error, method: c.req.method, path: c.req.path },
      'request failed: backing store unreachable',
    );
    return known(c, unavailable('a backing store (Redis or PostgreSQL)'));
  }
  const id = randomBytes(6).toString('hex');
  logger.error(
    { err: error, errorId: id, method: c.req.method, path: c.req.path },
    'internal error',
  );
  return c.json({ code: 'internal', detail: `internal error (id ${id})` }, 500);
}

function known(c: Context, error: HookfleetError): Response {
  const { code, message: detail, fields } = error;
  const body: ErrorBody =
    fields === undefined ? { code, detail } : { code, detail, fields: [...fields] };
  // A 503 (e.g. the Producer's redis_unavailable) always says when to come back.
  const headers = error.headers ?? (error.status === 503 ? RETRY_AFTER_HEADERS : {});
  return c.json(body, error.status, { ...headers });
}
