import { describe, expect, it } from 'vitest';
import { envelopeBody, messageContent } from '../../src/delivery/envelope.js';

describe('envelopeBody', () => {
  it('is valid JSON holding the type, the timestamp and the payload, whatever the type contains', () => {
    const type = 'odd"type\\with\u2028characters';
    const body = envelopeBody(type, '2026-12-01T00:00:00.000Z', '{"b":1,"a":[true,null]}');
    expect(JSON.parse(body)).toEqual({
      type,
      timestamp: '2026-12-01T00:00:00.000Z',
      data: { b: 1, a: [true, null] },
    });
  });

  it('keeps the payload text byte for byte, spacing and key order included', () => {
    const payload = '{ "z" : 1,\n "a":2 }';
    expect(envelopeBody('t', 'ts', payload).endsWith(`"data":${payload}}`)).toBe(true);
  });
});

describe('messageContent', () => {
  it('gives raw endpoints the payload, and envelope endpoints the same envelope string each time', () => {
    const content = messageContent('{"a":1}', { type: 't', timestamp: 'ts' });
    expect(content.body('raw')).toBe('{"a":1}');
    expect(content.body('envelope')).toBe('{"type":"t","timestamp":"ts","data":{"a":1}}');
    expect(content.body('envelope')).toBe(content.body('envelope'));
  });

  it('gives every endpoint the bare payload when the message has no envelope', () => {
    expect(messageContent('{"a":1}').body('envelope')).toBe('{"a":1}');
  });
});
