import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/dashboard/bullBoard.js';
import { subscriptionPatterns } from '../../src/db/endpoints.js';
import {
  createEndpointRequest,
  eventTypePatternSchema,
  sendMessageRequest,
} from '../../src/api/contracts.js';
import { openApiDocument } from '../../src/api/openapi.js';
import { deliveryStatus } from '../../src/views.js';

describe('subscriptionPatterns', () => {
  it('lists the type, each prefix wildcard from the longest, and *', () => {
    expect(subscriptionPatterns('a.b.c')).toEqual(['a.b.c', 'a.b.*', 'a.*', '*']);
    expect(subscriptionPatterns('ping')).toEqual(['ping', '*']);
  });
});

describe('eventTypePatternSchema', () => {
  it.each(['invoice.paid', 'invoice.*', '*', 'a:b-c_d.e', 'a.b.c.*'])('accepts %s', (pattern) => {
    expect(eventTypePatternSchema.safeParse(pattern).success).toBe(true);
  });
  it.each(['', 'a b', '*.paid', 'a.*.b', 'a*', '**', 'a.**'])('refuses %j', (pattern) => {
    expect(eventTypePatternSchema.safeParse(pattern).success).toBe(false);
  });
});

describe('request contracts', () => {
  it('refuse unknown fields', () => {
    expect(createEndpointRequest.safeParse({ url: 'http://a.example/', secret: 'x' }).success).toBe(
      false,
    );
    expect(sendMessageRequest.safeParse({ eventType: 'a', payload: 1, extra: 1 }).success).toBe(
      false,
    );
  });
});

describe('deliveryStatus', () => {
  const attempt = (outcome: string) =>
    ({ outcome }) as Parameters<typeof deliveryStatus>[0][number];
  it('is queued without attempts, else the newest attempt’s outcome', () => {
    expect(deliveryStatus([])).toBe('queued');
    expect(deliveryStatus([attempt('retrying')])).toBe('retrying');
    expect(deliveryStatus([attempt('retrying'), attempt('succeeded')])).toBe('succeeded');
    expect(deliveryStatus([attempt('retrying'), attempt('failed')])).toBe('failed');
    expect(deliveryStatus([attempt('failed'), attempt('retrying')])).toBe('retrying');
  });
  it('is in_flight while an attempt is being sent, whatever the attempts before', () => {
    expect(deliveryStatus([], true)).toBe('in_flight');
    expect(deliveryStatus([attempt('retrying')], true)).toBe('in_flight');
    expect(deliveryStatus([attempt('failed')], true)).toBe('in_flight');
  });
});

describe('redactSecrets', () => {
  it('replaces the values of secret-looking keys at any depth and leaves the rest', () => {
    expect(
      redactSecrets({
        a: 1,
        secret: 's',
        list: [{ signingSecret: 'x', ok: true }],
        deep: { AUTHORIZATION: 'y', signatureHeader: 'z' },
      }),
    ).toEqual({
      a: 1,
      secret: '[redacted]',
      list: [{ signingSecret: '[redacted]', ok: true }],
      deep: { AUTHORIZATION: '[redacted]', signatureHeader: '[redacted]' },
    });
    expect(redactSecrets('plain')).toBe('plain');
    expect(redactSecrets(null)).toBeNull();
  });
});

describe('openApiDocument', () => {
  it('resolves every $ref to a component', () => {
    const doc = openApiDocument();
    const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas;
    const refs = [
      ...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g),
    ].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(schemas).toHaveProperty(ref);
  });
});
