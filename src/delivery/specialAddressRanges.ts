import ipaddr from 'ipaddr.js';

/**
 * The tables behind delivery/addressGuard.ts. Most special-purpose ranges come from ipaddr.js's
 * `range()`, which follows the IANA special-purpose address registries:
 *   https://www.iana.org/assignments/iana-ipv4-special-registry/
 *   https://www.iana.org/assignments/iana-ipv6-special-registry/
 * What it does not know (cloud metadata addresses, the IPv6 forms that carry an IPv4 address and
 * where that address sits) is listed here.
 */

/** Words for the names ipaddr.js `range()` answers with; used in BlockedAddressError messages. */
export const RANGE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  // IPv4 (ipaddr.js IPv4.prototype.SpecialRanges)
  unspecified: 'an unspecified ("this network") address', // 0.0.0.0/8 RFC 1122, ::/128 RFC 4291
  broadcast: 'the limited broadcast address', // RFC 919
  multicast: 'a multicast address', // 224.0.0.0/4 RFC 5771, ff00::/8 RFC 4291
  linkLocal: 'a link-local address', // 169.254.0.0/16 RFC 3927, fe80::/10 RFC 4291
  loopback: 'a loopback address', // 127.0.0.0/8 RFC 1122, ::1/128 RFC 4291
  carrierGradeNat: 'a carrier-grade NAT address', // 100.64.0.0/10 RFC 6598
  private: 'a private address', // RFC 1918
  // 192.0.0.0/24 RFC 6890, documentation RFC 5737, benchmarking RFC 2544, 240.0.0.0/4 RFC 1112
  reserved: 'a reserved or documentation address',
  as112: 'an AS112 DNS address', // RFC 7534, RFC 7535
  amt: 'an AMT relay address', // RFC 7450
  // IPv6 (ipaddr.js IPv6.prototype.SpecialRanges)
  uniqueLocal: 'a unique-local address', // fc00::/7 RFC 4193
  deprecatedSiteLocal: 'a site-local address', // fec0::/10 RFC 3879
  discard: 'a discard-only address', // 100::/64 RFC 6666
  benchmarking: 'a benchmarking address', // 2001:2::/48 RFC 5180
  as112v6: 'an AS112 DNS address', // RFC 7534, RFC 7535
  deprecatedOrchid: 'an ORCHID address', // RFC 4843
  orchid2: 'an ORCHIDv2 address', // RFC 7343
  droneRemoteIdProtocolEntityTags: 'a drone remote ID address', // RFC 9374
  segmentRouting: 'a segment routing address', // 5f00::/16 RFC 9602
};

/**
 * Instance metadata services: the classic SSRF target, since they hand out cloud credentials.
 * Refused even inside HOOKFLEET_ALLOW_CIDRS (a broad allowance such as 100.64.0.0/10 for a VPN must
 * not open Alibaba's metadata service). Keys are in ipaddr.js `toString()` form.
 */
export const CLOUD_METADATA_ADDRESSES: ReadonlyMap<string, string> = new Map([
  ['169.254.169.254', 'AWS, GCP, Azure, Oracle, DigitalOcean and others'],
  ['169.254.170.2', 'AWS ECS task metadata'],
  ['169.254.170.23', 'AWS EKS Pod Identity'],
  ['fd00:ec2::254', 'AWS IMDS over IPv6'],
  ['fd00:ec2::23', 'AWS EKS Pod Identity over IPv6'],
  ['fd20:ce::254', 'GCP metadata over IPv6'],
  ['100.100.100.200', 'Alibaba Cloud'],
  // A public address, but inside Azure it is the host's WireServer (certificates, extensions).
  ['168.63.129.16', 'Azure WireServer'],
  ['192.0.0.192', 'Oracle Cloud (legacy)'],
]);

/** IANA's global unicast space; every other IPv6 block is special or unassigned (RFC 4291 2.4). */
export const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

/** An IPv6 form, defined by its prefix, that carries one or more IPv4 addresses. */
export interface Ipv4Embedding {
  /** For messages: "::ffff:7f00:1 is an IPv4-mapped form of 127.0.0.1, ...". */
  readonly name: string;
  readonly range: [ipaddr.IPv6, number];
  /** The IPv4 addresses carried; empty when they cannot be known, and then the address is refused. */
  readonly ipv4: (parts: readonly number[]) => ipaddr.IPv4[];
  /** Refused even when the IPv4 address it carries is fine; says why. */
  readonly refusedAnyway?: string;
}

/** Builds an IPv4 address from two 16-bit IPv6 groups. */
export function ipv4FromGroups(high: number | undefined, low: number | undefined): ipaddr.IPv4 {
  const h = high ?? 0;
  const l = low ?? 0;
  return new ipaddr.IPv4([h >> 8, h & 0xff, l >> 8, l & 0xff]);
}

const lastTwoGroups = (parts: readonly number[]) => [ipv4FromGroups(parts[6], parts[7])];

/** Checked in this order, before the address is judged as native IPv6. */
export const IPV4_EMBEDDINGS: readonly Ipv4Embedding[] = [
  // ::ffff:0:0/96, RFC 4291 2.5.5.2: a dual-stack socket connects to the IPv4 address itself.
  {
    name: 'an IPv4-mapped form',
    range: ipaddr.IPv6.parseCIDR('::ffff:0:0/96'),
    ipv4: lastTwoGroups,
  },
  // ::ffff:0:0:0/96, RFC 2765 / RFC 6145 (SIIT "IPv4-translated").
  {
    name: 'an IPv4-translated form',
    range: ipaddr.IPv6.parseCIDR('::ffff:0:0:0/96'),
    ipv4: lastTwoGroups,
  },
  // 64:ff9b::/96, RFC 6052: the NAT64 well-known prefix; the translator connects to the IPv4 address.
  { name: 'a NAT64 form', range: ipaddr.IPv6.parseCIDR('64:ff9b::/96'), ipv4: lastTwoGroups },
  // 64:ff9b:1::/48, RFC 8215: local-use NAT64; the operator picks the prefix length (RFC 6052 2.2),
  // so where the IPv4 address sits is unknown. It leads into a private translator: refused.
  {
    name: 'a local-use NAT64 form',
    range: ipaddr.IPv6.parseCIDR('64:ff9b:1::/48'),
    ipv4: () => [],
  },
  // 2002::/16, RFC 3056: 6to4, the IPv4 address is groups 1 and 2.
  {
    name: 'a 6to4 form',
    range: ipaddr.IPv6.parseCIDR('2002::/16'),
    ipv4: (parts) => [ipv4FromGroups(parts[1], parts[2])],
  },
  // 2001::/32, RFC 4380 section 4: Teredo carries the server address (groups 2-3) and the client's
  // public address with every bit inverted (groups 6-7). Both must be acceptable.
  {
    name: 'a Teredo form',
    range: ipaddr.IPv6.parseCIDR('2001::/32'),
    ipv4: (parts) => [
      ipv4FromGroups(parts[2], parts[3]),
      ipv4FromGroups(~(parts[6] ?? 0) & 0xffff, ~(parts[7] ?? 0) & 0xffff),
    ],
  },
  // ::/96, RFC 4291 2.5.5.1: "IPv4-compatible", deprecated and never used for real traffic.
  // Checked after ::/128 and ::1/128, which are in this range too.
  {
    name: 'an IPv4-compatible form',
    range: ipaddr.IPv6.parseCIDR('::/96'),
    ipv4: lastTwoGroups,
    refusedAnyway: 'a deprecated IPv4-compatible address (RFC 4291 section 2.5.5.1)',
  },
];

/**
 * ISATAP (RFC 5214 section 6.1) puts an IPv4 address in the interface identifier of any /64:
 * `prefix:0:5efe:a.b.c.d`, or `prefix:200:5efe:a.b.c.d` when the IPv4 address is global (the "u"
 * bit; the "g" bit may be set too). Answers that IPv4 address, or undefined for other addresses.
 */
export function isatapIpv4(parts: readonly number[]): ipaddr.IPv4 | undefined {
  const [, , , , idHigh = 1, idLow = 0] = parts;
  if ((idHigh & 0xfcff) !== 0 || idLow !== 0x5efe) return undefined;
  return ipv4FromGroups(parts[6], parts[7]);
}
