import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { newSecret } from '../../src/ids.js';
import { signatureHeader } from '../../src/delivery/signature.js';

describe('signatureHeader', () => {
  const body = JSON.stringify({ type: 'invoice.paid', amount: 100 });
  const timestampSec = Math.floor(Date.now() / 1000);

  it('produces a v1 signature the standardwebhooks package verifies', () => {
    const secret = newSecret();
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(timestampSec),
      'webhook-signature': signatureHeader([secret], 'msg_1', timestampSec, body),
    };
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('signs once per secret, so either secret verifies during a rotation', () => {
    const [oldSecret, newSecretValue] = [newSecret(), newSecret()];
    const signature = signatureHeader([newSecretValue, oldSecret], 'msg_2', timestampSec, body);
    expect(signature.split(' ')).toHaveLength(2);
    const headers = {
      'webhook-id': 'msg_2',
      'webhook-timestamp': String(timestampSec),
      'webhook-signature': signature,
    };
    expect(() => new Webhook(oldSecret).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(newSecretValue).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow();
  });

  it('makes secrets of at least 24 random bytes with the whsec_ prefix', () => {
    const secret = newSecret();
    expect(secret).toMatch(/^whsec_/);
    expect(Buffer.from(secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    expect(newSecret()).not.toBe(secret);
  });
});
