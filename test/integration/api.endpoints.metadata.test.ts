import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdEndpointSchema, errorSchema } from '../../src/api/contracts.js';
import type { ResolvedAddress } from '../../src/delivery/addressGuard.js';
import { createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

// An operator who allows everything (0.0.0.0/0, ::/0) still cannot let a customer register a
// metadata service. Nothing is connected to: registration checks addresses, it sends nothing.
const DNS: Record<string, ResolvedAddress[]> = {
  'mapped-metadata.test': [{ address: '::ffff:169.254.169.254', family: 6 }],
  'nat64-alibaba.test': [{ address: '64:ff9b::6464:64c8', family: 6 }],
  'private.test': [{ address: '10.0.0.5', family: 4 }],
};

let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness(
    { HOOKFLEET_ALLOW_CIDRS: '0.0.0.0/0,::/0' },
    { resolve: (name) => Promise.resolve(DNS[name] ?? []) },
  );
});
afterAll(async () => {
  await api.close();
});

describe('POST /v1/endpoints with every range allowed', () => {
  it.each([
    ['IPv4-mapped 169.254.169.254', 'http://[::ffff:a9fe:a9fe]/latest/meta-data/'],
    ['NAT64 169.254.169.254', 'http://[64:ff9b::a9fe:a9fe]/'],
    ['6to4 100.100.100.200', 'http://[2002:6464:64c8::1]/'],
    ['Teredo 169.254.169.254', 'http://[2001:0:4136:e378:8000:63bf:5601:5601]/'],
    ['IPv4-compatible 168.63.129.16', 'http://[::a83f:8110]/'],
    ['AWS IMDS over IPv6', 'http://[fd00:ec2::254]/'],
    ['a name resolving to IPv4-mapped 169.254.169.254', 'http://mapped-metadata.test/'],
    ['a name resolving to NAT64 100.100.100.200', 'http://nat64-alibaba.test/'],
  ])('refuses %s with 422 validation_failed naming the metadata address', async (_what, url) => {
    const res = await api.call('POST', '/v1/endpoints', { body: { url } });
    expect(res.status).toBe(422);
    const error = errorSchema.parse(res.body);
    expect(error.code).toBe('validation_failed');
    expect(error.fields?.[0]?.path).toBe('url');
    expect(error.detail).toContain('cloud metadata address');
  });

  it('accepts a private address the allow-list opens', async () => {
    const res = await api.call('POST', '/v1/endpoints', { body: { url: 'http://private.test/' } });
    expect(res.status).toBe(201);
    createdEndpointSchema.parse(res.body);
  });

  it('refuses a PATCH that moves an endpoint onto a metadata address', async () => {
    const created = await api.call('POST', '/v1/endpoints', {
      body: { url: 'http://[::ffff:10.0.0.5]/' },
    });
    expect(created.status).toBe(201);
    const { id } = createdEndpointSchema.parse(created.body);
    const res = await api.call('PATCH', `/v1/endpoints/${id}`, {
      body: { url: 'http://[::ffff:a9fe:a9fe]/' },
    });
    expect(res.status).toBe(422);
    expect(errorSchema.parse(res.body).detail).toContain('cloud metadata address');
  });
});
