/**
 * An endpoint's custom headers: extra request headers sent on every attempt (an API key a
 * receiver's gateway wants, a routing tag). What they may not be:
 * - hop-by-hop or framing headers (RFC 9110 §7.6.1, RFC 9112), which the HTTP client owns:
 *   connection, keep-alive, transfer-encoding, upgrade, te, trailer, proxy-*, host,
 *   content-length, and expect (undici refuses it);
 * - content-type, which says what the signed body is (JSON);
 * - webhook-*, the Standard Webhooks headers a receiver verifies.
 * Names are RFC 9110 tokens, values visible ASCII (no CR/LF: no header injection), and a set is
 * capped in count and size so a row cannot bloat every request. Values may be credentials, so
 * views show them masked (maskHeaders).
 */
import { z } from 'zod';

/** Most custom headers an endpoint may have. */
export const MAX_ENDPOINT_HEADERS = 20;
/** Longest header name, in characters. */
export const MAX_HEADER_NAME_LENGTH = 128;
/** Most bytes of all custom headers together, counted as `name: value\r\n`. */
export const MAX_ENDPOINT_HEADERS_BYTES = 8192;
/** What views show in place of each value. */
export const MASKED_HEADER_VALUE = '********';

const RESERVED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'content-length',
  'expect',
  'content-type',
]);
/** RFC 9110 §5.6.2 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII, space and tab, not starting or ending with white space. */
const VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

/** Why a header name may not be set, or undefined when it may. */
export function headerNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_HEADER_NAME_LENGTH || !TOKEN.test(name)) {
    return `header names are 1 to ${MAX_HEADER_NAME_LENGTH} letters, digits and !#$%&'*+.^_\`|~-`;
  }
  const lower = name.toLowerCase();
  if (lower.startsWith('webhook-')) {
    return 'webhook-* headers are the signature hookfleet sends; they cannot be overridden';
  }
  if (RESERVED.has(lower) || lower.startsWith('proxy-')) {
    return `${lower} is set by the HTTP client (hop-by-hop or framing) and cannot be overridden`;
  }
  return undefined;
}

/** A set of custom headers, name -> value, as the API, the CLI and the pages take it. */
export const endpointHeadersSchema = z
  .record(z.string(), z.string())
  .superRefine((headers, ctx) => {
    const names = Object.keys(headers);
    if (names.length > MAX_ENDPOINT_HEADERS) {
      ctx.addIssue({
        code: 'custom',
        message: `at most ${MAX_ENDPOINT_HEADERS} headers (got ${names.length})`,
      });
    }
    const seen = new Set<string>();
    let bytes = 0;
    for (const [name, value] of Object.entries(headers)) {
      const problem = headerNameProblem(name);
      if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
      if (seen.has(name.toLowerCase())) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'given twice (header names are case-insensitive)',
        });
      }
      seen.add(name.toLowerCase());
      if (!VALUE.test(value)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message:
            'values are visible ASCII characters, spaces and tabs, with no white space at either end',
        });
      } else if (value === MASKED_HEADER_VALUE) {
        // A listing's mask sent back as is would replace the real value with the mask.
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `${MASKED_HEADER_VALUE} is how values are shown, not a value; leave the header out to keep it`,
        });
      }
      bytes += Buffer.byteLength(`${name}: ${value}\r\n`);
    }
    if (bytes > MAX_ENDPOINT_HEADERS_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `at most ${MAX_ENDPOINT_HEADERS_BYTES} bytes of headers in all (got ${bytes})`,
      });
    }
  });

/**
 * A change to an endpoint's headers (PATCH): a value sets that header, null removes it, and
 * headers not named are kept, so one header can change without sending the others' secrets again.
 */
export const endpointHeadersChangeSchema = z.record(z.string(), z.string().nullable());

/** The headers after a change (names compared case-insensitively); check with endpointHeadersSchema. */
export function changedHeaders(
  current: Readonly<Record<string, string>>,
  change: Readonly<Record<string, string | null>>,
): Record<string, string> {
  const changedNames = new Set(Object.keys(change).map((name) => name.toLowerCase()));
  const next = Object.fromEntries(
    Object.entries(current).filter(([name]) => !changedNames.has(name.toLowerCase())),
  );
  for (const [name, value] of Object.entries(change)) if (value !== null) next[name] = value;
  return next;
}

/**
 * The headers with each value replaced by MASKED_HEADER_VALUE, for views; names sorted, since
 * jsonb keeps no order of its own.
 */
export function maskHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(headers)
      .sort()
      .map((name) => [name, MASKED_HEADER_VALUE]),
  );
}
