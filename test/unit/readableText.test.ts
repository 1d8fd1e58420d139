import { describe, expect, it } from 'vitest';
import { readableText } from '../../src/readableText.js';

const bytesOf = (text: string) => Buffer.byteLength(text, 'utf8');
/** Anything PostgreSQL's text type or a terminal would choke on. */
const UNSAFE = /[\p{Cc}\uD800-\uDFFF\u202A-\u202E\u2066-\u2069]/u;

describe('readableText', () => {
  it('replaces NUL and other C0 controls and DEL with one U+FFFD per run', () => {
    expect(readableText('a\0b\0\0\0c\x01\x1b[31md\x7f')).toBe('a\uFFFDb\uFFFDc\uFFFD[31md\uFFFD');
  });

  it('replaces C1 controls, and folds NEL with the other whitespace', () => {
    expect(readableText('a\u0080b\u009fc\u0085d')).toBe('a\uFFFDb\uFFFDc d');
  });

  it('folds runs of whitespace, line breaks included, into one space and trims the ends', () => {
    expect(readableText('\r\n  oops\n\n\twent \v\f wrong \u2028 ')).toBe('oops went wrong');
  });

  it('replaces bidirectional overrides that would make the text read backwards', () => {
    expect(readableText('pay \u202Eevil\u202C me')).toBe('pay \uFFFDevil\uFFFD me');
  });

  it('decodes bytes as UTF-8, each invalid sequence becoming U+FFFD', () => {
    const bytes = Buffer.from([0x6f, 0x6b, 0xff, 0x20, 0xc3, 0x28, 0x20, 0xed, 0xa0, 0x80, 0x21]);
    const text = readableText(bytes);
    expect(text).toMatch(/^ok\uFFFD+ \uFFFD\( \uFFFD+!$/u);
    expect(text).not.toMatch(UNSAFE);
  });

  it('keeps valid multi-byte characters and drops a character cut at the end of an excerpt', () => {
    const euro = Buffer.from('prix 5 €', 'utf8');
    expect(readableText(euro)).toBe('prix 5 €');
    expect(readableText(euro.subarray(0, euro.length - 1))).toBe('prix 5');
  });

  it('replaces lone surrogates and keeps paired ones', () => {
    expect(readableText('a\uD800b\uDC00c\uD83D\uDE00')).toBe('a\uFFFDb\uFFFDc\u{1F600}');
    expect(readableText('end\uD83D')).toBe('end\uFFFD');
  });

  it('bounds long input in characters, with an ellipsis counted in the bound', () => {
    const text = readableText('z'.repeat(10_000), { maxChars: 100, maxBytes: 10_000 });
    expect([...text]).toHaveLength(100);
    expect(text).toBe(`${'z'.repeat(99)}\u2026`);
  });

  it('bounds long input in UTF-8 bytes without splitting a character', () => {
    const text = readableText('é€😀'.repeat(1000), { maxChars: 10_000, maxBytes: 100 });
    expect(bytesOf(text)).toBeLessThanOrEqual(100);
    expect(bytesOf(text)).toBeGreaterThan(90);
    expect(text.endsWith('\u2026')).toBe(true);
    expect(text).not.toMatch(UNSAFE);
  });

  it('bounds the bytes that replacement characters add to a short excerpt of garbage', () => {
    const garbage = Buffer.alloc(512, 0xff); // each byte invalid: 512 x U+FFFD would be 1,536 bytes
    const text = readableText(garbage, { maxChars: 512, maxBytes: 512 });
    expect(bytesOf(text)).toBeLessThanOrEqual(512);
    expect([...text].length).toBeLessThanOrEqual(512);
  });

  it('returns text that fits both bounds unchanged', () => {
    expect(readableText('HTTP 500: fine', { maxChars: 14, maxBytes: 14 })).toBe('HTTP 500: fine');
  });
});
