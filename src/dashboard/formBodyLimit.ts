/**
 * The body limit of the pages' form posts. Hono's own answer to an oversized body is an
 * HTTPException, which the API's error handler takes for a bug (a 500); this answers the error
 * vocabulary's 413 `payload_too_large` instead, naming the limit.
 */
import { bodyLimit } from 'hono/body-limit';
import { HookfleetError } from '../errors.js';

export function formBodyLimit(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new HookfleetError(
        'payload_too_large',
        `the form is larger than ${maxBytes} bytes`,
        413,
      );
    },
  });
}
