/**
 * Text from outside the process (a receiver's response body, a network error's message) made safe
 * to store in PostgreSQL and to show: PostgreSQL refuses a NUL in `text` (SQLSTATE 22021), and a
 * refused row used to hold up every outcome batched with it.
 *
 * - bytes are decoded as UTF-8, each invalid sequence becoming U+FFFD (an incomplete character at
 *   the very end, from an excerpt cut mid-character, is left out);
 * - lone UTF-16 surrogates become U+FFFD;
 * - whitespace runs (tabs and line breaks included) fold into one space, ends trimmed;
 * - each run of other control characters (C0, DEL, C1) and of bidirectional overrides (which can
 *   make a log line or a page read backwards) becomes one U+FFFD;
 * - the result is bounded in characters (code points) and in UTF-8 bytes, an ellipsis counted in
 *   both marking a cut.
 */

export interface ReadableTextOptions {
  /** Most characters (Unicode code points) returned, the ellipsis included. Default 512. */
  maxChars?: number;
  /** Most UTF-8 bytes returned, the ellipsis included. Default 1024. */
  maxBytes?: number;
}

const REPLACEMENT = '\uFFFD';
const ELLIPSIS = '\u2026';
const ELLIPSIS_BYTES = 3;
// Code units, not code points (no `u` flag), so that unpaired halves are found.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const WHITESPACE = /[\s\u0085]+/gu;
const UNREADABLE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]+/gu;

export function readableText(
  input: string | Uint8Array,
  options: ReadableTextOptions = {},
): string {
  const maxChars = options.maxChars ?? 512;
  const maxBytes = options.maxBytes ?? 1024;
  const text =
    typeof input === 'string'
      ? input
      : // `stream: true` holds back (here: drops) a trailing incomplete sequence instead of
        // turning it into U+FFFD; a fresh decoder per call keeps nothing between calls.
        new TextDecoder('utf-8', { fatal: false }).decode(input, { stream: true });
  const cleaned = text
    .replace(LONE_SURROGATE, REPLACEMENT)
    .replace(WHITESPACE, ' ')
    .replace(UNREADABLE, REPLACEMENT)
    .trim();
  return bounded(cleaned, maxChars, maxBytes);
}

/** `text` if it fits both bounds, else its longest prefix that fits with an ellipsis after it. */
function bounded(text: string, maxChars: number, maxBytes: number): string {
  if (text.length <= maxChars && text.length * 3 <= maxBytes) return text; // fast path: fits surely
  let chars = 0;
  let bytes = 0;
  let fitEnd = 0; // code-unit end of the longest prefix that leaves room for the ellipsis
  let fitsWhole = true;
  for (const char of text) {
    const size = utf8Bytes(char.codePointAt(0)!);
    chars += 1;
    bytes += size;
    if (chars > maxChars || bytes > maxBytes) {
      fitsWhole = false;
      break;
    }
    if (chars <= maxChars - 1 && bytes <= maxBytes - ELLIPSIS_BYTES) fitEnd += char.length;
  }
  if (fitsWhole) return text;
  if (maxChars < 1 || maxBytes < ELLIPSIS_BYTES) return '';
  return `${text.slice(0, fitEnd).trimEnd()}${ELLIPSIS}`;
}

function utf8Bytes(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}
