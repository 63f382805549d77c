import { isIP } from 'node:net';

/**
 * IP addresses as the outbound guard sees them: parsed to bytes, sorted into the ranges a
 * server-side request must never reach on a registrant's say-so, and matched against the
 * operator's allow-list. Input is what `URL.hostname` (brackets stripped) or a resolver gives:
 * WHATWG URL parsing has already turned every IPv4 notation (2130706433, 0177.0.0.1, 0x7f.1,
 * 127.1, percent-encoded or full-width digits) into a dotted quad, and every IPv6 spelling into
 * its compressed form.
 */

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** Why an address is internal: the range it falls in. */
export type InternalRange = 'unspecified' | 'loopback' | 'private' | 'link-local' | 'unique-local' | 'multicast' | 'reserved';

/** Parses an IPv4 dotted quad or an IPv6 address (brackets and a zone id allowed); undefined for anything else. */
export function parseIp(text: string): IpAddress | undefined {
  let address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  const family = isIP(address);
  if (family === 4) return { family: 4, bytes: Uint8Array.from(address.split('.').map(Number)) };
  if (family !== 6) return undefined;
  const bytes = new Uint8Array(16);
  // A trailing dotted quad (::ffff:127.0.0.1) fills the last four bytes.
  let groupsText = address;
  let tail: number[] = [];
  const lastColon = address.lastIndexOf(':');
  if (address.includes('.', lastColon)) {
    tail = address.slice(lastColon + 1).split('.').map(Number);
    groupsText = `${address.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = groupsText.split('::');
  const headGroups = head ? head.split(':') : [];
  const restGroups = rest ? rest.split(':') : [];
  const groups = rest === undefined
    ? headGroups
    : [...headGroups, ...Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  if (tail.length === 4) bytes.set(tail, 12);
  return { family: 6, bytes };
}

/** A range of addresses: a network and its prefix length. */
export interface Cidr {
  network: IpAddress;
  bits: number;
}

/** `a.b.c.d/n`, `x::/n`, or a single address (all bits); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = '', bits, extra] = text.split('/');
  const network = parseIp(address);
  if (!network || extra !== undefined) return undefined;
  const max = network.family === 4 ? 32 : 128;
  if (bits === undefined) return { network, bits: max };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return { network, bits: Number(bits) };
}

export function inCidr(ip: IpAddress, cidr: Cidr): boolean {
  if (ip.family !== cidr.network.family) return false;
  const whole = Math.floor(cidr.bits / 8);
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== cidr.network.bytes[i]) return false;
  const rest = cidr.bits % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[whole]! & mask) === (cidr.network.bytes[whole]! & mask);
}

const range = (text: string, name: InternalRange) => ({ cidr: parseCidr(text)!, name });

/** IPv4: RFC 6890's special-purpose registry, less the few globally reachable entries. */
const IPV4_RANGES = [
  range('0.0.0.0/8', 'unspecified'), // "this network"; 0.0.0.0 reaches the local host
  range('10.0.0.0/8', 'private'), // RFC 1918
  range('100.64.0.0/10', 'private'), // RFC 6598 shared address space (carrier-grade NAT)
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local'), // cloud metadata services live here (169.254.169.254)
  range('172.16.0.0/12', 'private'),
  range('192.0.0.0/24', 'reserved'), // IETF protocol assignments
  range('192.0.2.0/24', 'reserved'), // documentation (TEST-NET-1)
  range('192.88.99.0/24', 'reserved'), // 6to4 relay anycast (deprecated)
  range('192.168.0.0/16', 'private'),
  range('198.18.0.0/15', 'reserved'), // benchmarking
  range('198.51.100.0/24', 'reserved'), // TEST-NET-2
  range('203.0.113.0/24', 'reserved'), // TEST-NET-3
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'), // future use, and 255.255.255.255 broadcast
];

/** IPv6 ranges refused outright (the forms embedding an IPv4 address are judged by it, below). */
const IPV6_RANGES = [
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('::/96', 'reserved'), // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
  range('64:ff9b:1::/48', 'private'), // local-use NAT64 (RFC 8215)
  range('100::/64', 'reserved'), // discard-only
  range('2001::/32', 'reserved'), // Teredo: a tunnel to an obfuscated IPv4 address
  range('2001:db8::/32', 'reserved'), // documentation
  range('fc00::/7', 'unique-local'),
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'private'), // site-local (deprecated)
  range('ff00::/8', 'multicast'),
];

/** IPv6 forms that carry an IPv4 address, and where it sits: such an address is judged by that IPv4 address. */
const EMBEDDING_IPV4 = [
  { cidr: parseCidr('::ffff:0:0/96')!, at: 12 }, // IPv4-mapped (RFC 4291 §2.5.5.2)
  { cidr: parseCidr('::ffff:0:0:0/96')!, at: 12 }, // IPv4-translated (RFC 2765)
  { cidr: parseCidr('64:ff9b::/96')!, at: 12 }, // NAT64 well-known prefix (RFC 6052)
  { cidr: parseCidr('2002::/16')!, at: 2 }, // 6to4 (RFC 3056)
];

const GLOBAL_UNICAST_V6 = parseCidr('2000::/3')!;

const MAPPED = EMBEDDING_IPV4[0]!.cidr;

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is; any other address as it is. */
export function unmapped(ip: IpAddress): IpAddress {
  return ip.family === 6 && inCidr(ip, MAPPED) ? { family: 4, bytes: ip.bytes.slice(12) } : ip;
}

/** The IPv4 address an IPv6 address carries (mapped, translated, NAT64, 6to4), if any. */
export function embeddedIpv4(ip: IpAddress): IpAddress | undefined {
  if (ip.family !== 6) return undefined;
  const form = EMBEDDING_IPV4.find((e) => inCidr(ip, e.cidr));
  return form ? { family: 4, bytes: ip.bytes.slice(form.at, form.at + 4) } : undefined;
}

/**
 * The internal range an address falls in, or undefined for a public address. An IPv6 address
 * carrying an IPv4 one is judged by it (::ffff:127.0.0.1 is loopback, 64:ff9b::a00:1 private);
 * any other IPv6 address outside global unicast (2000::/3) is reserved.
 */
export function internalRange(ip: IpAddress): InternalRange | undefined {
  if (ip.family === 4) return IPV4_RANGES.find((r) => inCidr(ip, r.cidr))?.name;
  const v4 = embeddedIpv4(ip);
  if (v4) return internalRange(v4);
  const listed = IPV6_RANGES.find((r) => inCidr(ip, r.cidr))?.name;
  if (listed) return listed;
  return inCidr(ip, GLOBAL_UNICAST_V6) ? undefined : 'reserved';
}
