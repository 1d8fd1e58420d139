import type { LookupAddress, LookupOptions } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { BlockedAddressError, ConfigError, PermanentDeliveryError } from '../../src/errors.js';
import {
  createAddressGuard,
  type AddressGuard,
  type ResolvedAddress,
  type Resolver,
} from '../../src/delivery/addressGuard.js';

/** Test DNS: names under .test answer from this table; anything else is an error. */
const zone: Record<string, string[]> = {
  'loopback.test': ['127.0.0.1'],
  'mapped-loopback.test': ['::ffff:127.0.0.1'],
  'mixed.test': ['93.184.216.34', '10.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'v6-private.test': ['2606:2800:220:1:248:1893:25c8:1946', 'fd00::1'],
  'public.test': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  'empty.test': [],
};

const resolve: Resolver = (hostname) => {
  const answers = zone[hostname];
  if (answers === undefined) {
    return Promise.reject(
      Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }),
    );
  }
  return Promise.resolve(
    answers.map((address): ResolvedAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
  );
};

interface Case {
  input: string;
  /** Passes when 127.0.0.0/8 is allowed. */
  loopback?: boolean;
  /** PermanentDeliveryError but not BlockedAddressError (bad URL, scheme, credentials). */
  notAnAddress?: boolean;
  /** Part of the message, checked with the default guard. */
  says?: string;
}

/** Addresses given to assertAllowedAddress. */
const refusedAddresses: Case[] = [
  { input: '0.0.0.0', says: '0.0.0.0 is an unspecified' },
  { input: '0.1.2.3' },
  { input: '10.0.0.1', says: '10.0.0.1 is a private address' },
  { input: '172.16.0.1' },
  { input: '172.31.255.255' },
  { input: '192.168.1.1' },
  { input: '127.0.0.1', loopback: true, says: '127.0.0.1 is a loopback address' },
  { input: '127.255.255.254', loopback: true },
  { input: '169.254.1.1', says: 'link-local' },
  { input: '169.254.169.254', says: 'cloud metadata' },
  { input: '169.254.170.2', says: 'cloud metadata' },
  { input: '100.64.0.1', says: 'carrier-grade NAT' },
  { input: '100.127.255.255' },
  { input: '100.100.100.200', says: 'cloud metadata' },
  { input: '168.63.129.16', says: 'Azure' },
  { input: '224.0.0.1', says: 'multicast' },
  { input: '239.255.255.250' },
  { input: '255.255.255.255', says: 'broadcast' },
  { input: '240.0.0.1', says: 'reserved' },
  { input: '192.0.0.8' },
  { input: '192.0.2.1', says: 'documentation' },
  { input: '198.51.100.1' },
  { input: '203.0.113.1' },
  { input: '198.18.0.1' },
  { input: '192.88.99.1' },
  { input: '::1', says: '::1 is a loopback address' },
  { input: '::', says: 'unspecified' },
  { input: 'fe80::1', says: 'link-local' },
  { input: 'fc00::1', says: 'unique-local' },
  { input: 'fd12:3456::1', says: 'unique-local' },
  { input: 'fd00:ec2::254', says: 'cloud metadata' },
  { input: 'ff02::1', says: 'multicast' },
  { input: 'fec0::1', says: 'site-local' },
  { input: '100::1', says: 'discard' },
  { input: '2001:db8::1', says: 'documentation' },
  { input: '3fff::1' },
  { input: '4000::1', says: 'outside global unicast' },
  { input: '::ffff:127.0.0.1', loopback: true, says: 'IPv4-mapped form of 127.0.0.1' },
  { input: '::ffff:7f00:1', loopback: true },
  { input: '::ffff:10.0.0.1' },
  { input: '::ffff:169.254.169.254', says: 'cloud metadata' },
  { input: '::ffff:0:7f00:1', says: 'IPv4-translated form of 127.0.0.1' },
  { input: '::7f00:1', says: 'IPv4-compatible form of 127.0.0.1' },
  { input: '::808:808', says: 'deprecated IPv4-compatible' },
  { input: '64:ff9b::7f00:1', says: 'NAT64 form of 127.0.0.1, a loopback address' },
  { input: '64:ff9b::a9fe:a9fe', says: 'cloud metadata' },
  { input: '64:ff9b:1::808:808', says: 'cannot be known' },
  { input: '2002:7f00:1::', says: '6to4 form of 127.0.0.1' },
  { input: '2002:a00:1::1', says: '6to4 form of 10.0.0.1' },
  // Teredo, RFC 4380: server 65.54.227.120, client bits inverted (80ff:fffe -> 127.0.0.1).
  { input: '2001:0:4136:e378:8000:63bf:80ff:fffe', says: 'Teredo form of 127.0.0.1' },
  { input: '2001:0:a00:1:8000:63bf:f7f7:f7f7', says: 'Teredo form of 10.0.0.1' },
  { input: '2001:4860::5efe:7f00:1', says: 'ISATAP form of 127.0.0.1' },
  { input: '2001:4860::200:5efe:a00:1', says: 'ISATAP form of 10.0.0.1' },
  { input: 'fe80::5efe:808:808', says: 'link-local' },
  { input: 'fe80::1%eth0' },
  { input: 'fe80::1%eth0.1', says: 'zone index' },
  { input: '2606:4700::1%eth0', says: 'zone index' },
  { input: '127.1', says: 'not an IP address' },
  { input: '0177.0.0.1' },
  { input: 'localhost' },
];

/** URLs given to checkUrl (which includes assertUrl), with the test DNS above. */
const refusedUrls: Case[] = [
  { input: 'http://2130706433/', loopback: true, says: '127.0.0.1 is a loopback address' },
  { input: 'http://0x7f.1/', loopback: true },
  { input: 'http://0x7f000001/', loopback: true },
  { input: 'http://0177.0.0.1/', loopback: true },
  { input: 'http://127.1/', loopback: true },
  { input: 'http://127.0.0.1./', loopback: true },
  { input: 'https://127.0.0.1:8443/hook', loopback: true },
  { input: 'http://0/' },
  { input: 'http://0x0a.0.0.1/', says: '10.0.0.1 is a private address' },
  { input: 'http://[::1]/' },
  { input: 'http://[::ffff:127.0.0.1]/', loopback: true },
  { input: 'http://[::ffff:7f00:1]/', loopback: true },
  { input: 'http://[::ffff:0:7f00:1]/' },
  { input: 'http://[64:ff9b::7f00:1]/' },
  { input: 'http://[2002:7f00:1::]/' },
  { input: 'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/' },
  { input: 'http://[fd00:ec2::254]/latest/meta-data/' },
  { input: 'http://169.254.169.254/latest/meta-data/' },
  { input: 'http://localhost/', says: 'localhost is a loopback name' },
  { input: 'http://LOCALHOST:8080/' },
  { input: 'http://api.localhost/' },
  { input: 'http://example.com./', says: 'ends with a dot' },
  { input: 'http://loopback.test/', loopback: true, says: 'loopback.test resolves to 127.0.0.1' },
  { input: 'http://mapped-loopback.test/', loopback: true },
  { input: 'http://mixed.test/', says: 'mixed.test resolves to 10.0.0.1' },
  { input: 'http://metadata.test/' },
  { input: 'http://v6-private.test/', says: 'unique-local' },
  { input: 'http://user:secret@example.com/', notAnAddress: true, says: 'username or password' },
  { input: 'http://user@example.com/', notAnAddress: true },
  { input: 'ftp://example.com/', notAnAddress: true, says: 'scheme ftp:' },
  { input: 'file:///etc/passwd', notAnAddress: true },
  { input: 'gopher://example.com/', notAnAddress: true },
  { input: 'not a url', notAnAddress: true, says: 'not a valid URL' },
];

const allowedAddresses = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '169.253.255.255',
  '2606:4700:4700::1111',
  '2001:4860:4860::8888',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
];

const allowedUrls = [
  'https://public.test/hooks?x=1',
  'http://public.test:8080/',
  'https://93.184.216.34/',
  'http://[2606:4700:4700::1111]:8443/x',
  'http://[64:ff9b::808:808]/',
];

function refusedError(testCase: Case): typeof PermanentDeliveryError {
  return testCase.notAnAddress === true ? PermanentDeliveryError : BlockedAddressError;
}

const guards = [
  { name: 'the default guard', allowCidrs: [] as string[] },
  { name: 'a guard allowing 127.0.0.0/8', allowCidrs: ['127.0.0.0/8'] },
];

describe.each(guards)('$name', ({ allowCidrs }) => {
  const guard = createAddressGuard({ allowCidrs, resolve });
  const loopbackAllowed = allowCidrs.length > 0;
  const expectation = (testCase: Case) =>
    loopbackAllowed && testCase.loopback === true ? 'allows' : 'refuses';

  it.each(refusedAddresses.map((c) => ({ ...c, verdict: expectation(c) })))(
    '$verdict the address $input',
    (testCase) => {
      const attempt = () => guard.assertAllowedAddress(testCase.input);
      if (testCase.verdict === 'allows') return expect(attempt).not.toThrow();
      expect(attempt).toThrow(BlockedAddressError);
      if (testCase.says !== undefined && !loopbackAllowed) expect(attempt).toThrow(testCase.says);
    },
  );

  it.each(refusedUrls.map((c) => ({ ...c, verdict: expectation(c) })))(
    '$verdict the URL $input',
    async (testCase) => {
      const attempt = () => guard.checkUrl(testCase.input);
      if (testCase.verdict === 'allows') {
        const { addresses } = await attempt();
        expect(addresses.length).toBeGreaterThan(0);
        return;
      }
      await expect(attempt()).rejects.toThrow(refusedError(testCase));
      if (testCase.notAnAddress === true) {
        await expect(attempt()).rejects.not.toThrow(BlockedAddressError);
      }
      if (testCase.says !== undefined && !loopbackAllowed) {
        await expect(attempt()).rejects.toThrow(testCase.says);
      }
    },
  );

  it.each(allowedAddresses)('allows the address %s', (address) => {
    expect(() => guard.assertAllowedAddress(address)).not.toThrow();
  });

  it.each(allowedUrls)('allows the URL %s', async (url) => {
    const checked = await guard.checkUrl(url);
    expect(checked.url.href).toBe(new URL(url).href);
    expect(checked.addresses.length).toBeGreaterThan(0);
  });

  it('refuses 10.0.0.1, 169.254.169.254 and ::1 whatever the allowance', () => {
    for (const address of ['10.0.0.1', '169.254.169.254', '::1', '::ffff:0:7f00:1']) {
      expect(() => guard.assertAllowedAddress(address)).toThrow(BlockedAddressError);
    }
  });
});

describe('assertUrl', () => {
  const guard = createAddressGuard({
    resolve: () => Promise.reject(new Error('assertUrl must not resolve')),
  });

  it('returns the parsed URL of a host name without asking DNS', () => {
    expect(guard.assertUrl('https://hooks.example.com/a?b=1').hostname).toBe('hooks.example.com');
  });

  it('names the host but never repeats a password', () => {
    const attempt = () => guard.assertUrl('https://bob:hunter2@hooks.example.com/');
    expect(attempt).toThrow(PermanentDeliveryError);
    expect(attempt).toThrow(/hooks\.example\.com/);
    expect(attempt).not.toThrow(/hunter2/);
  });
});

describe('checkUrl', () => {
  it('answers every resolved address of an allowed name', async () => {
    const guard = createAddressGuard({ resolve });
    const { addresses } = await guard.checkUrl('https://public.test/');
    expect(addresses).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
  });

  it('passes a DNS failure through and refuses an empty answer', async () => {
    const guard = createAddressGuard({ resolve });
    await expect(guard.checkUrl('https://missing.test/')).rejects.toThrow('ENOTFOUND');
    await expect(guard.checkUrl('https://empty.test/')).rejects.toThrow('did not resolve');
  });
});

describe('createAddressGuard', () => {
  it('refuses a malformed allowCidrs entry with a ConfigError naming the variable', () => {
    expect(() => createAddressGuard({ allowCidrs: ['127.0.0.1'] })).toThrow(ConfigError);
    expect(() => createAddressGuard({ allowCidrs: ['nonsense/8'] })).toThrow(
      'HOOKFLEET_ALLOW_CIDRS',
    );
  });

  it('allows an IPv6 range given in allowCidrs', () => {
    const guard = createAddressGuard({ allowCidrs: ['fd00::/8'] });
    expect(() => guard.assertAllowedAddress('fd00::1')).not.toThrow();
    expect(() => guard.assertAllowedAddress('fc00::1')).toThrow(BlockedAddressError);
  });

  it('keeps cloud metadata addresses refused inside an allowed range', () => {
    const guard = createAddressGuard({ allowCidrs: ['169.254.0.0/16', '100.64.0.0/10'] });
    expect(() => guard.assertAllowedAddress('169.254.1.1')).not.toThrow();
    expect(() => guard.assertAllowedAddress('169.254.169.254')).toThrow(BlockedAddressError);
    expect(() => guard.assertAllowedAddress('100.100.100.200')).toThrow(BlockedAddressError);
  });
});

/** Calls the guard's lookup the way net.connect does. */
function lookupWith(
  guard: AddressGuard,
  hostname: string,
  options: LookupOptions,
): Promise<string | LookupAddress[]> {
  return new Promise((resolvePromise, reject) => {
    guard.lookup(hostname, options, (error, address) => {
      if (error) reject(error);
      else resolvePromise(address);
    });
  });
}

describe('lookup', () => {
  const guard = createAddressGuard({ resolve });

  it('answers every checked address when asked for all of them', async () => {
    await expect(lookupWith(guard, 'public.test', { all: true })).resolves.toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
  });

  it('answers one address of the requested family', async () => {
    await expect(lookupWith(guard, 'public.test', { family: 6 })).resolves.toBe(
      '2606:2800:220:1:248:1893:25c8:1946',
    );
    await expect(lookupWith(guard, 'public.test', {})).resolves.toBe('93.184.216.34');
  });

  it('refuses a name when any of its addresses is refused', async () => {
    await expect(lookupWith(guard, 'mixed.test', { all: true })).rejects.toThrow(
      BlockedAddressError,
    );
    await expect(lookupWith(guard, 'mixed.test', { family: 4 })).rejects.toThrow(
      BlockedAddressError,
    );
  });

  it('refuses localhost and literal addresses without asking the resolver', async () => {
    const strict = createAddressGuard({
      resolve: () => Promise.reject(new Error('must not resolve')),
    });
    await expect(lookupWith(strict, 'localhost', { all: true })).rejects.toThrow(
      BlockedAddressError,
    );
    await expect(lookupWith(strict, '127.0.0.1', {})).rejects.toThrow(BlockedAddressError);
  });

  it('checks again on every call, so a rebinding answer is refused', async () => {
    const answers = ['93.184.216.34', '127.0.0.1'];
    const rebinding = createAddressGuard({
      resolve: () => {
        const address = answers.shift() ?? '127.0.0.1';
        return Promise.resolve([{ address, family: 4 }]);
      },
    });
    await expect(rebinding.checkUrl('https://rebind.test/')).resolves.toBeDefined();
    await expect(lookupWith(rebinding, 'rebind.test', { all: true })).rejects.toThrow(
      'rebind.test resolves to 127.0.0.1, which is a loopback address',
    );
  });
});

/**
 * 169.254.169.254 (a9fe:a9fe), 100.100.100.200 (6464:64c8) and 168.63.129.16 (a83f:8110) in every
 * IPv6 form that carries an IPv4 address, and IPv6 metadata addresses in the spellings Node accepts.
 */
const metadataForms = [
  '169.254.169.254',
  '169.254.170.2',
  '100.100.100.200',
  '168.63.129.16',
  '::ffff:169.254.169.254',
  '::ffff:a9fe:a9fe',
  '::ffff:100.100.100.200',
  '::ffff:a83f:8110',
  '::ffff:0:a9fe:a9fe',
  '::a9fe:a9fe',
  '::6464:64c8',
  '64:ff9b::a9fe:a9fe',
  '64:ff9b::100.100.100.200',
  // Local-use NAT64 (RFC 8215) with each prefix length RFC 6052 allows inside 64:ff9b:1::/48.
  '64:ff9b:1:a9fe:a9:fe00::', // /48
  '64:ff9b:1:a9:fe:a9fe::', // /56
  '64:ff9b:1:0:a9:fea9:fe00:0', // /64
  '64:ff9b:1::a9fe:a9fe', // /96
  '2002:a9fe:a9fe::1',
  '2002:6464:64c8:1::1',
  // Teredo: the client address is stored inverted (a9fe:a9fe -> 5601:5601), the server as is.
  '2001:0:4136:e378:8000:63bf:5601:5601',
  '2001:0:a9fe:a9fe::1',
  '2001:4860::5efe:a9fe:a9fe',
  'fd00::200:5efe:a9fe:a9fe',
  'fe80::5efe:a9fe:a9fe',
  'fd00:ec2::254',
  'fd00:ec2:0:0:0:0:0:254',
  'fd00:ec2::254%eth0',
  'fd20:ce::254',
  'fe80::a9fe:a9fe',
];

const broadAllowances = [
  ['0.0.0.0/0'],
  ['::/0'],
  ['169.254.0.0/16'],
  ['100.64.0.0/10'],
  ['64:ff9b::/96'],
  ['64:ff9b:1::/48'],
  ['2002::/16'],
  ['2001::/32'],
  ['fc00::/7', 'fe80::/10'],
  ['0.0.0.0/0', '::/0'],
];

describe.each(broadAllowances.map((allowCidrs) => ({ allowCidrs })))(
  'a guard allowing $allowCidrs',
  ({ allowCidrs }) => {
    const guard = createAddressGuard({ allowCidrs, resolve });

    it.each(metadataForms)('refuses %s as a cloud metadata address', (address) => {
      const attempt = () => guard.assertAllowedAddress(address);
      expect(attempt).toThrow(BlockedAddressError);
      expect(attempt).toThrow('cloud metadata');
    });

    it('refuses a URL that spells a metadata address in IPv6', async () => {
      for (const url of ['http://[::ffff:a9fe:a9fe]/', 'http://[64:ff9b::a9fe:a9fe]/latest/']) {
        await expect(guard.checkUrl(url)).rejects.toThrow('cloud metadata');
      }
    });
  },
);

describe('the allow-list opens private ranges, never metadata', () => {
  it.each([
    [['169.254.0.0/16'], ['169.254.1.1', '::ffff:169.254.1.1', '::ffff:a9fe:101']],
    [['100.64.0.0/10'], ['100.100.100.100', '::ffff:100.100.100.100']],
    [['64:ff9b::/96'], ['64:ff9b::a00:1', '64:ff9b::a9fe:101']],
    [['64:ff9b:1::/48'], ['64:ff9b:1::a00:1', '64:ff9b:1:a00:1::']],
    [['2002::/16'], ['2002:a00:1::1', '2002:a9fe:101::1']],
    [
      ['0.0.0.0/0', '::/0'],
      ['10.0.0.1', '::ffff:10.0.0.1', '::1', 'fd00:ec2::1', 'fe80::1'],
    ],
  ])('with %j, allows %j', (allowCidrs, addresses) => {
    const guard = createAddressGuard({ allowCidrs });
    for (const address of addresses) {
      expect(() => guard.assertAllowedAddress(address), address).not.toThrow();
    }
  });

  it('names the form and the IPv4 address it carries', () => {
    const guard = createAddressGuard({ allowCidrs: ['::/0'] });
    expect(() => guard.assertAllowedAddress('2002:a9fe:a9fe::1')).toThrow(
      '2002:a9fe:a9fe::1 is a 6to4 form of 169.254.169.254, a cloud metadata address',
    );
  });
});

describe('lookup with every range allowed', () => {
  it('refuses at connect time a name that resolves to a metadata address in another form', async () => {
    for (const address of ['::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '2002:6464:64c8::']) {
      const guard = createAddressGuard({
        allowCidrs: ['0.0.0.0/0', '::/0'],
        resolve: () => Promise.resolve([{ address, family: 6 }]),
      });
      await expect(lookupWith(guard, 'hooks.test', { all: true }), address).rejects.toThrow(
        `hooks.test resolves to ${address}, which is `,
      );
      await expect(lookupWith(guard, 'hooks.test', { family: 6 })).rejects.toThrow(
        'cloud metadata',
      );
    }
  });
});
