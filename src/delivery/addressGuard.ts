import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { BlockedAddressError, ConfigError, PermanentDeliveryError } from '../errors.js';
import {
  IPV4_EMBEDDINGS,
  IPV6_GLOBAL_UNICAST,
  RANGE_DESCRIPTIONS,
  isatapIpv4,
  metadataServiceAt,
  possibleCarriedIpv4,
} from './specialAddressRanges.js';

/**
 * The SSRF address guard. Endpoint URLs are typed in by customers, so without it the fleet would
 * POST into our own network: loopback, private ranges, cloud metadata services. See
 * https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html
 *
 * Terminology:
 *   literal host  a URL host that is an IP address; WHATWG URL parsing has already turned every
 *                 IPv4 spelling (2130706433, 0x7f.1, 0177.0.0.1, 127.1) into dotted decimal.
 *                 Node connects to it without calling `lookup`, so assertUrl checks it.
 *   host name     anything else; checked when it is resolved, by `lookup`, at connect time, so the
 *                 address connected to is the address checked (no DNS rebinding window).
 *
 * The decision, in order:
 *   1. A cloud metadata address is refused, in every form: itself, or any IPv4 address an IPv6
 *      form may carry (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo, ISATAP). Nothing opens it.
 *   2. An address inside `allowCidrs` is allowed (an IPv4 range covers the IPv4-mapped form too).
 *   3. Otherwise it must be plain global unicast: IPv4 outside every special-purpose range, IPv6
 *      inside 2000::/3 and outside every special-purpose range. IPv6 forms that carry an IPv4
 *      address are judged by that IPv4 address as well.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface AddressGuardOptions {
  /**
   * CIDR ranges that deliveries may reach although they are special-purpose (HOOKFLEET_ALLOW_CIDRS,
   * or for the operator webhook HOOKFLEET_OPERATOR_ALLOW_CIDRS as well). An IPv4-mapped IPv6
   * address (::ffff:a.b.c.d) of an allowed IPv4 address is allowed too. Cloud metadata addresses
   * stay refused in every form. Default none.
   */
  allowCidrs?: readonly string[];
  /** The setting `allowCidrs` came from, named when an entry is not a CIDR range. Default 'HOOKFLEET_ALLOW_CIDRS'. */
  allowCidrsSetting?: string;
  /** DNS resolver; default node:dns/promises lookup(hostname, { all: true }). Tests inject one. */
  resolve?: Resolver;
}

export interface AddressGuard {
  /** Throws BlockedAddressError unless `ip` (v4 or v6 text) may be reached. */
  assertAllowedAddress(ip: string): void;
  /** Parses and checks a URL without DNS: scheme, credentials, literal IP hosts, localhost names. Returns the parsed URL. */
  assertUrl(url: string): URL;
  /** assertUrl plus, for host names, resolving and checking every address (used when an endpoint is registered). */
  checkUrl(url: string): Promise<{ url: URL; addresses: ResolvedAddress[] }>;
  /** For undici `new Agent({ connect: { lookup: guard.lookup } })`: resolves with `resolve`, checks every address, answers with the checked ones. */
  lookup: LookupFunction;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export function createAddressGuard(options: AddressGuardOptions = {}): AddressGuard {
  const setting = options.allowCidrsSetting ?? 'HOOKFLEET_ALLOW_CIDRS';
  const allowRanges = (options.allowCidrs ?? []).map((cidr) => parseAllowCidr(cidr, setting));
  const resolve = options.resolve ?? resolveWithDns;

  /** Why `ip` is refused, as a phrase ("a loopback address"), or undefined when it is allowed. */
  function refusal(ip: string): string | undefined {
    // Strict notation only: what is judged must be exactly what the socket will connect to.
    if (isIP(ip) === 0) return 'not an IP address in standard notation';
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = ipaddr.parse(ip);
    } catch {
      // Node accepts zone indexes (fe80::1%eth0.1) that ipaddr.js does not; none is reachable anyway.
      return 'an address with an unreadable zone index';
    }
    // Before the allow-list: no allowance, however broad, opens a metadata service.
    const metadata = metadataRefusal(address);
    if (metadata !== undefined) return metadata;
    if (isAllowListed(address)) return undefined;
    return address instanceof ipaddr.IPv4 ? ipv4Refusal(address) : ipv6Refusal(address);
  }

  function isAllowListed(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    const candidates: (ipaddr.IPv4 | ipaddr.IPv6)[] = [address];
    if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress()) {
      candidates.push(address.toIPv4Address());
    }
    return candidates.some((candidate) =>
      allowRanges.some((range) => range[0].kind() === candidate.kind() && candidate.match(range)),
    );
  }

  function assertAllowedAddress(ip: string): void {
    const reason = refusal(ip);
    if (reason !== undefined) throw new BlockedAddressError(`${ip} is ${reason}`);
  }

  function assertUrl(text: string): URL {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      // The text may hold credentials or tokens; it is not repeated in the message.
      throw new PermanentDeliveryError('the endpoint URL is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PermanentDeliveryError(
        `the URL scheme ${url.protocol} is not allowed; use http: or https:`,
      );
    }
    if (url.username !== '' || url.password !== '') {
      throw new PermanentDeliveryError(
        `the URL for ${url.hostname} holds a username or password; those are not allowed`,
      );
    }
    const host = hostOf(url);
    if (isIP(host) !== 0) assertAllowedAddress(host);
    else assertHostName(host);
    return url;
  }

  /** Resolves `hostname` and checks every answer; refuses the name if any answer is refused. */
  async function resolveChecked(hostname: string): Promise<ResolvedAddress[]> {
    if (isIP(hostname) !== 0) {
      assertAllowedAddress(hostname);
      return [{ address: hostname, family: familyOf(hostname) }];
    }
    assertHostName(hostname);
    const answers = await resolve(hostname);
    if (answers.length === 0) {
      throw Object.assign(new Error(`${hostname} did not resolve to any address`), {
        code: 'ENOTFOUND',
      });
    }
    return answers.map(({ address }) => {
      const reason = refusal(address);
      if (reason !== undefined) {
        throw new BlockedAddressError(`${hostname} resolves to ${address}, which is ${reason}`);
      }
      return { address, family: familyOf(address) };
    });
  }

  async function checkUrl(text: string): Promise<{ url: URL; addresses: ResolvedAddress[] }> {
    const url = assertUrl(text);
    return { url, addresses: await resolveChecked(hostOf(url)) };
  }

  // net.connect / tls.connect call this for host names (never for IP literals). With autoSelectFamily
  // (Node 20's default) they ask for `all: true` and try each answer in turn; every answer was checked.
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    const family = requestedFamily(lookupOptions.family);
    void resolveChecked(hostname).then(
      (checked) => {
        const usable = family === 0 ? checked : checked.filter((a) => a.family === family);
        const first = usable[0];
        if (first === undefined) {
          const error = new Error(`${hostname} has no IPv${family} address`);
          callback(Object.assign(error, { code: 'ENOTFOUND' }), '');
        } else if (lookupOptions.all === true) {
          callback(null, usable);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: unknown) => {
        callback(error instanceof Error ? error : new Error(String(error)), '');
      },
    );
  };

  return { assertAllowedAddress, assertUrl, checkUrl, lookup };
}

function ipv4Refusal(address: ipaddr.IPv4): string | undefined {
  const range = address.range();
  if (range === 'unicast') return undefined;
  return RANGE_DESCRIPTIONS[range] ?? `in the special-purpose range "${range}"`;
}

function ipv6Refusal(address: ipaddr.IPv6): string | undefined {
  // A zone index picks an interface; only link-local addresses need one.
  if (address.zoneId !== undefined) return 'an address with a zone index';
  const range: string = address.range();
  // ::/128 and ::1/128 sit inside the IPv4-compatible ::/96 but are not IPv4 forms.
  if (range === 'unspecified' || range === 'loopback') return RANGE_DESCRIPTIONS[range];

  const embedding = IPV4_EMBEDDINGS.find((candidate) => address.match(candidate.range));
  if (embedding !== undefined) {
    const carried = embedding.ipv4(address.parts);
    if (carried.length === 0) return `${embedding.name} whose IPv4 address cannot be known`;
    // The IPv4 address inside is judged without allowCidrs: only the IPv4-mapped form is the same
    // host, and isAllowListed has already looked at that.
    for (const ipv4 of carried) {
      const reason = ipv4Refusal(ipv4);
      if (reason !== undefined) return `${embedding.name} of ${ipv4.toString()}, ${reason}`;
    }
    return embedding.refusedAnyway;
  }

  if (range !== 'unicast') {
    return RANGE_DESCRIPTIONS[range] ?? `in the special-purpose range "${range}"`;
  }
  if (!address.match(IPV6_GLOBAL_UNICAST)) return 'outside global unicast space (2000::/3)';
  const isatap = isatapIpv4(address.parts);
  if (isatap !== undefined) {
    const reason = ipv4Refusal(isatap);
    if (reason !== undefined) return `an ISATAP form of ${isatap.toString()}, ${reason}`;
  }
  return undefined;
}

/** Says so when `address`, or any IPv4 address it may carry, is a cloud metadata service. */
function metadataRefusal(address: ipaddr.IPv4 | ipaddr.IPv6): string | undefined {
  const service = metadataServiceAt(address);
  if (service !== undefined) return metadataPhrase(service);
  if (address instanceof ipaddr.IPv4) return undefined;
  for (const { form, ipv4 } of possibleCarriedIpv4(address)) {
    const carried = metadataServiceAt(ipv4);
    if (carried !== undefined) return `${form} of ${ipv4.toString()}, ${metadataPhrase(carried)}`;
  }
  return undefined;
}

function metadataPhrase(service: string): string {
  return `a cloud metadata address (${service}), refused whatever is allowed`;
}

/**
 * Names refused without asking DNS. A trailing dot makes a different string for the same name, a
 * classic way around host-name checks; `localhost` and `*.localhost` are loopback by definition
 * (RFC 6761 section 6.3) and resolvers may answer them from /etc/hosts.
 */
function assertHostName(hostname: string): void {
  const name = hostname.toLowerCase();
  if (name.endsWith('.')) {
    throw new BlockedAddressError(`${hostname} ends with a dot; use the name without it`);
  }
  if (name === 'localhost' || name.endsWith('.localhost')) {
    throw new BlockedAddressError(`${hostname} is a loopback name (RFC 6761)`);
  }
}

function parseAllowCidr(cidr: string, setting: string): Cidr {
  try {
    return ipaddr.parseCIDR(cidr);
  } catch {
    throw new ConfigError(`${setting}: ${cidr} is not a CIDR range such as 127.0.0.0/8 or ::1/128`);
  }
}

/** The URL's host without the brackets WHATWG keeps around IPv6 literals. */
function hostOf(url: URL): string {
  const host = url.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function familyOf(ip: string): 4 | 6 {
  return isIP(ip) === 6 ? 6 : 4;
}

function requestedFamily(family: number | string | undefined): 0 | 4 | 6 {
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

async function resolveWithDns(hostname: string): Promise<ResolvedAddress[]> {
  const answers = await dnsLookup(hostname, { all: true });
  return answers.map(({ address }) => ({ address, family: familyOf(address) }));
}
