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
 * Instance metadata services and the other per-host cloud services that answer on fixed addresses:
 * the classic SSRF target, since metadata services hand out cloud credentials. Refused in every
 * form (IPv4-mapped, NAT64, 6to4, Teredo, ...) whatever HOOKFLEET_ALLOW_CIDRS says: a broad
 * allowance such as 169.254.0.0/16, 100.64.0.0/10 or ::/0 must not open them. No webhook receiver
 * lives on any of them, so refusing the infrastructure services (AWS time sync and DNS) as well
 * costs nothing. Keys are in ipaddr.js `toString()` form, without a zone index.
 */
export const CLOUD_METADATA_ADDRESSES: ReadonlyMap<string, string> = new Map([
  // GCP's metadata.google.internal and AWS's instance-data resolve here too; so do IBM Cloud,
  // Huawei, Hetzner, Linode and OpenStack.
  ['169.254.169.254', 'AWS, GCP, Azure, Oracle, DigitalOcean and others'],
  ['fd00:ec2::254', 'AWS IMDS over IPv6'],
  ['169.254.170.2', 'AWS ECS task metadata and credentials'],
  ['169.254.170.23', 'AWS EKS Pod Identity'],
  ['fd00:ec2::23', 'AWS EKS Pod Identity over IPv6'],
  ['169.254.169.123', 'AWS Time Sync Service'],
  ['fd00:ec2::123', 'AWS Time Sync Service over IPv6'],
  ['169.254.169.253', 'AWS Route 53 Resolver, the VPC DNS'],
  ['fd00:ec2::253', 'AWS Route 53 Resolver over IPv6'],
  ['fd20:ce::254', 'GCP metadata over IPv6'],
  // Where GKE's metadata server for Workload Identity listens (169.254.169.254 is redirected there).
  ['169.254.169.252', 'GKE metadata server'],
  // A public address, but inside Azure it is the host's WireServer (certificates, extensions) and DNS.
  ['168.63.129.16', 'Azure WireServer'],
  ['100.100.100.200', 'Alibaba Cloud'],
  ['169.254.0.23', 'Tencent Cloud'],
  ['169.254.42.42', 'Scaleway'],
  ['fd00:42::42', 'Scaleway over IPv6'],
  ['fd00:c1::a9fe:a9fe', 'Oracle Cloud over IPv6'],
  ['192.0.0.192', 'Oracle Cloud (legacy)'],
  ['fe80::a9fe:a9fe', 'OpenStack over IPv6'],
]);

/** The metadata service at `address` (zone index ignored), or undefined. */
export function metadataServiceAt(address: ipaddr.IPv4 | ipaddr.IPv6): string | undefined {
  // A zone index only picks the interface: fd00:ec2::254%eth0 is still the metadata service.
  const key =
    address instanceof ipaddr.IPv6 ? new ipaddr.IPv6(address.parts).toString() : address.toString();
  return CLOUD_METADATA_ADDRESSES.get(key);
}

/** IANA's global unicast space; every other IPv6 block is special or unassigned (RFC 4291 2.4). */
export const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

/** An IPv6 form, defined by its prefix, that carries one or more IPv4 addresses. */
export interface Ipv4Embedding {
  /** For messages: "::ffff:7f00:1 is an IPv4-mapped form of 127.0.0.1, ...". */
  readonly name: string;
  readonly range: [ipaddr.IPv6, number];
  /** The IPv4 addresses carried; empty when they cannot be known, and then the address is refused. */
  readonly ipv4: (parts: readonly number[]) => ipaddr.IPv4[];
  /**
   * Where `ipv4` cannot know the position: every IPv4 address the form could carry, each checked
   * against CLOUD_METADATA_ADDRESSES so an allow-list entry for the range cannot open one. Default
   * `ipv4`.
   */
  readonly possibleIpv4?: (parts: readonly number[]) => ipaddr.IPv4[];
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
  // so where the IPv4 address sits is unknown. It leads into a private translator: refused unless
  // allowed, and never when any of the prefix lengths inside the /48 would read a metadata address.
  {
    name: 'a local-use NAT64 form',
    range: ipaddr.IPv6.parseCIDR('64:ff9b:1::/48'),
    ipv4: () => [],
    possibleIpv4: (parts) => [48, 56, 64, 96].map((length) => rfc6052Ipv4(parts, length)),
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
 * The IPv4 address an RFC 6052 section 2.2 address carries after a prefix of `prefixLength` bits
 * (32, 40, 48, 56, 64 or 96): the 32 bits after the prefix, skipping bits 64-71 (the "u" octet).
 */
export function rfc6052Ipv4(parts: readonly number[], prefixLength: number): ipaddr.IPv4 {
  const bytes = parts.flatMap((group) => [group >> 8, group & 0xff]);
  const octets: number[] = [];
  for (let index = prefixLength / 8; octets.length < 4; index++) {
    if (index !== 8) octets.push(bytes[index] ?? 0);
  }
  return new ipaddr.IPv4(octets);
}

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

/** An IPv4 address found inside an IPv6 one, with the name of the form that carries it. */
export interface CarriedIpv4 {
  form: string;
  ipv4: ipaddr.IPv4;
}

/**
 * Every IPv4 address `address` could carry, read every way it could be read: the embedding its
 * prefix names (every candidate position when that is unknown) and ISATAP, which fits in any /64
 * (link-local and unique-local ones included). For the metadata check, which must see them all.
 */
export function possibleCarriedIpv4(address: ipaddr.IPv6): CarriedIpv4[] {
  const carried: CarriedIpv4[] = [];
  const embedding = IPV4_EMBEDDINGS.find((candidate) => address.match(candidate.range));
  if (embedding !== undefined) {
    const read = embedding.possibleIpv4 ?? embedding.ipv4;
    for (const ipv4 of read(address.parts)) carried.push({ form: embedding.name, ipv4 });
  }
  const isatap = isatapIpv4(address.parts);
  if (isatap !== undefined) carried.push({ form: 'an ISATAP form', ipv4: isatap });
  return carried;
}
