import { describe, expect, it } from 'vitest';
import { errorText } from '../../src/cli/errorText.js';

describe('errorText', () => {
  it('says what failed when a library rejects with nothing', () => {
    expect(errorText(undefined)).toBe('a failure that gave no reason (undefined was thrown)');
  });

  it('falls back to the code, then the class name, of an error without a message', () => {
    expect(errorText(Object.assign(new Error(''), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(errorText(new TypeError(''))).toBe('TypeError without a message');
  });

  it('keeps a message when there is one', () => {
    expect(errorText(new Error('boom'))).toBe('boom');
    expect(errorText('plain')).toBe('plain');
    expect(errorText({ reason: 'x' })).toBe('{"reason":"x"}');
  });
});
