/**
 * Reads a JSON request body defensively, in the order that lets each problem get its own status:
 * 415 (not JSON), 413 (too big: the Content-Length header first, then the bytes actually read,
 * so a lying or absent header cannot make us buffer more), 400 (not UTF-8, not JSON), 422 (JSON
 * that PostgreSQL cannot store or that nests too deep), and only then the zod contract (422).
 */
import { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { z } from 'zod';
import { HookfleetError } from '../errors.js';
import { parseInput } from '../producer/sendInput.js';

/** Deeper JSON is refused: parsing it later (zod, JSON.stringify) recurses once per level. */
export const MAX_JSON_DEPTH = 100;

export interface ReadJsonOptions {
  /** Largest body accepted, in bytes. */
  limitBytes: number;
  /** Treat a missing or empty body as `{}` (for POSTs whose body is optional). */
  optional?: boolean;
}

/** Reads, checks and parses the body with `schema`; throws a HookfleetError with the status to answer. */
export async function readJson<S extends z.ZodType>(
  c: Context,
  schema: S,
  options: ReadJsonOptions,
): Promise<z.output<S>> {
  const value = await readJsonValue(c, options);
  return parseInput(schema, value);
}

async function readJsonValue(c: Context, options: ReadJsonOptions): Promise<unknown> {
  const contentType = c.req.header('content-type');
  const isJson = contentType !== undefined && isJsonMediaType(contentType);
  const notJson = () =>
    new HookfleetError(
      'unsupported_media_type',
      `expected Content-Type: application/json${contentType === undefined ? '' : `, got ${contentType.slice(0, 100)}`}`,
      415,
    );
  // A route whose body is optional accepts an empty body whatever its Content-Type.
  if (!isJson && !options.optional) throw notJson();
  const declared = c.req.header('content-length');
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > options.limitBytes) {
    throw tooLarge(Number(declared), options.limitBytes);
  }
  const bytes = await readBody(c, options.limitBytes);
  if (bytes.length === 0) {
    if (options.optional) return {};
    throw new HookfleetError(
      'malformed_json',
      'the request body is empty; expected a JSON object',
      400,
    );
  }
  if (!isJson) throw notJson();
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new HookfleetError('malformed_json', 'the request body is not valid UTF-8', 400);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HookfleetError(
      'malformed_json',
      `the request body is not valid JSON: ${(error as Error).message}`,
      400,
    );
  }
  checkStorable(value);
  return value;
}

/** application/json, or any application/*+json, with optional parameters (charset). */
function isJsonMediaType(contentType: string): boolean {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

function tooLarge(bytes: number | undefined, limitBytes: number): HookfleetError {
  const size = bytes === undefined ? `over ${limitBytes} bytes` : `${bytes} bytes`;
  return new HookfleetError(
    'payload_too_large',
    `the request body is ${size}; the limit is ${limitBytes} bytes`,
    413,
  );
}

/** Reused: decode() without `stream` keeps no state between calls. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Reads at most `limitBytes`; past that, stops reading and answers 413. */
async function readBody(c: Context, limitBytes: number): Promise<Uint8Array> {
  // Under @hono/node-server, read the Node request itself: `c.req.raw.body` would first build a
  // web Request around it (stream adapter, AbortSignal), a third of the API's CPU per send (#5).
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  if (incoming instanceof IncomingMessage && !incoming.readableDidRead) {
    return readIncoming(incoming, limitBytes);
  }
  const stream = c.req.raw.body;
  if (stream === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = (stream as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limitBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(undefined, limitBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks);
}

/**
 * readBody for a Node request. Past the limit it stops reading and leaves the rest to
 * @hono/node-server, which drains (bounded) or closes the connection after the 413 is sent.
 */
function readIncoming(incoming: IncomingMessage, limitBytes: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const settle = (finish: () => void) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
      finish();
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limitBytes) chunks.push(chunk);
      else {
        incoming.pause();
        settle(() => reject(tooLarge(undefined, limitBytes)));
      }
    };
    const onError = (error: Error) => settle(() => reject(error));
    const onEnd = () =>
      settle(() => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    const onClose = () =>
      settle(() =>
        reject(
          new HookfleetError(
            'incomplete_body',
            'the connection closed before the whole request body arrived',
            400,
          ),
        ),
      );
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Refuses JSON that would fail later, in the database or in a recursive walk: NUL characters and
 * unpaired surrogates (PostgreSQL's jsonb and text reject them), `__proto__` keys (lost when the
 * object is copied), and nesting deeper than MAX_JSON_DEPTH. Iterative, so depth cannot overflow it.
 */
function checkStorable(root: unknown): void {
  const stack: { value: unknown; path: string; depth: number }[] = [
    { value: root, path: '', depth: 0 },
  ];
  const fail = (path: string, message: string): never => {
    const field = path === '' ? '(root)' : path;
    throw new HookfleetError('validation_failed', `${field}: ${message}`, 422, [
      { path: field, message },
    ]);
  };
  const badString = (s: string) =>
    s.includes('\u0000')
      ? 'must not contain NUL (\\u0000) characters'
      : LONE_SURROGATE.test(s)
        ? 'must not contain unpaired UTF-16 surrogates'
        : undefined;
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = badString(value);
      if (problem) fail(path, problem);
    } else if (typeof value === 'object' && value !== null) {
      if (depth >= MAX_JSON_DEPTH) fail(path, `nests deeper than ${MAX_JSON_DEPTH} levels`);
      const entries = Array.isArray(value)
        ? value.map((v, i) => [String(i), v] as const)
        : Object.entries(value);
      for (const [key, child] of entries) {
        const childPath = path === '' ? key : `${path}.${key}`;
        const problem =
          badString(key) ??
          (key === '__proto__' ? 'keys named __proto__ are not accepted' : undefined);
        if (problem) fail(childPath, `key ${problem}`);
        stack.push({ value: child, path: childPath, depth: depth + 1 });
      }
    }
  }
}
