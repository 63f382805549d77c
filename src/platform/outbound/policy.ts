import { isLoopbackHost } from '../uris.js';
import { inCidr, internalRange, parseCidr, parseIp, unmapped, type Cidr } from './addresses.js';

/**
 * Where the server may send a request on someone else's say-so (a client's jwks_uri or
 * backchannel_logout_uri, later metadata documents and upstream identity providers): the one
 * rule the outbound fetcher enforces and client registration checks.
 *
 * - https only; http only when the issuer itself is on loopback (development), and then only to
 *   a loopback host (localhost, 127.0.0.1, [::1]).
 * - No credentials in the URL.
 * - Never an internal address — unspecified, loopback, private, carrier-grade NAT, link-local,
 *   unique-local, multicast, reserved; IPv6 forms carrying an IPv4 address judged by it — unless
 *   the operator allows it (OUTBOUND_ALLOWED_HOSTS: host names, addresses, CIDR ranges).
 *
 * A URL can be judged alone only so far: an IP-literal host and the names that always mean
 * loopback (localhost, *.localhost) are judged here; any other name is judged by the addresses
 * it resolves to, each of them, when the fetcher connects (addressProblem).
 */
export class OutboundPolicy {
  private readonly hosts: ReadonlySet<string>;
  private readonly ranges: readonly Cidr[];
  /** Whether http is allowed (to loopback hosts only): when the issuer itself is on loopback. */
  readonly httpOnLoopback: boolean;

  constructor(options: { issuer: string; allowed: readonly string[] }) {
    this.httpOnLoopback = isLoopbackHost(new URL(options.issuer).hostname);
    const ranges: Cidr[] = [];
    const hosts = new Set<string>();
    for (const entry of options.allowed) {
      const parsed = allowListEntry(entry);
      if (parsed === undefined) throw new Error(`not a host name, IP address or CIDR range: ${entry}`);
      if (typeof parsed === 'string') hosts.add(parsed); else ranges.push(parsed);
    }
    this.hosts = hosts;
    this.ranges = ranges;
  }

  /** Why a request to `uri` must not be sent, judged on the URL alone; undefined when only its resolved addresses are left to check. */
  targetProblem(uri: string): string | undefined {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return this.schemeRule();
    }
    const http = url.protocol === 'http:' && this.httpOnLoopback && isLoopbackHost(url.hostname);
    if (url.protocol !== 'https:' && !http) return this.schemeRule();
    if (url.username || url.password) return 'must not contain credentials';
    const host = hostName(url.hostname);
    if (this.hosts.has(host)) return undefined;
    if (parseIp(host)) return this.addressProblem(host, host);
    // RFC 6761 §6.3: localhost and every name under it are the loopback interface.
    if (host === 'localhost' || host.endsWith('.localhost')) {
      return ['127.0.0.1', '::1'].some((a) => this.isAllowed(parseIp(a)!)) ? undefined : `must not point at an internal address (${host} is loopback)`;
    }
    return undefined;
  }

  /** Why the server must not connect to `address` (as resolved for `hostname`); undefined when it may. */
  addressProblem(hostname: string, address: string): string | undefined {
    if (this.hosts.has(hostName(hostname))) return undefined;
    const ip = parseIp(address);
    if (!ip) return `must resolve to an IP address (got ${address})`;
    if (this.isAllowed(ip)) return undefined;
    const internal = internalRange(ip);
    return internal ? `must not point at an internal address (${address} is ${internal})` : undefined;
  }

  private isAllowed(ip: Parameters<typeof inCidr>[0]): boolean {
    const plain = unmapped(ip);
    return this.ranges.some((r) => inCidr(plain, r) || inCidr(ip, r));
  }

  private schemeRule(): string {
    return this.httpOnLoopback ? 'must be an https URL (http only on loopback)' : 'must be an https URL';
  }
}

/** A host as compared with the allow-list: lower case, no brackets, no trailing dot. */
function hostName(hostname: string): string {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * One OUTBOUND_ALLOWED_HOSTS entry: a CIDR range (an address is a range of one), or a host name
 * in lower case; undefined when it is neither. IPv4 must be a dotted quad: "127.1" or
 * "0x7f000001" would otherwise be read as a host name that never matches.
 */
export function allowListEntry(text: string): Cidr | string | undefined {
  const entry = text.trim().toLowerCase();
  const cidr = parseCidr(entry.startsWith('[') ? entry.replace(/^\[([^\]]*)\]/, '$1') : entry);
  if (cidr) return cidr;
  const host = entry.replace(/\.$/, '');
  if (/^[0-9.]+$/.test(host) || /^0x/.test(host) || host.includes('/') || host.includes(':')) return undefined;
  return DNS_NAME.test(host) ? host : undefined;
}
