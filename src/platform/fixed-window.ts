/**
 * Counts events per key over fixed windows, in memory: a key's window starts with its first
 * event and lasts `windowMs`; the next event after it starts a new one. At most `capacity`
 * keys are held — many keys are attacker-chosen (addresses, login names, client ids named at
 * /authorize) — and beyond that the key whose window started first is forgotten. The rate limits
 * (src/server/http/rate-limit.ts, src/oauth/client-auth/client-rate-limit.ts) and the client-authentication
 * back-off (src/oauth/client-auth/failure-backoff.ts) count with it.
 * Synchronous and allocation-free on a known key: it sits on the token endpoint's hot path.
 */
export class FixedWindowCounter {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();

  constructor(readonly windowMs: number, private readonly capacity = 10_000) {}

  /** Counts one event for `key` at `now` (ms); returns the count in its window, this one included. */
  add(key: string, now: number): { count: number; endsAt: number } {
    let window = this.windows.get(key);
    if (window === undefined || window.endsAt <= now) {
      // A new window goes to the back of the eviction order.
      if (window !== undefined) this.windows.delete(key);
      else if (this.windows.size >= this.capacity) this.windows.delete(this.windows.keys().next().value!);
      window = { count: 0, endsAt: now + this.windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return window;
  }

  /** Takes back one event counted for `key` in its current window at `now` (ms), if it has one. */
  release(key: string, now: number): void {
    const window = this.windows.get(key);
    if (window !== undefined && window.endsAt > now && window.count > 0) window.count -= 1;
  }

  /** The count for `key` in its current window at `now` (ms), without counting; undefined when it has none. */
  peek(key: string, now: number): { count: number; endsAt: number } | undefined {
    const window = this.windows.get(key);
    if (window === undefined) return undefined;
    if (window.endsAt <= now) {
      this.windows.delete(key);
      return undefined;
    }
    return window;
  }

  /** Whole seconds from `now` (ms) to `endsAt`, at least 1: a Retry-After value. */
  static secondsUntil(endsAt: number, now: number): number {
    return Math.max(1, Math.ceil((endsAt - now) / 1000));
  }
}

/**
 * What a per-address limit counts by: an IPv4 address as it is; an IPv6 address by its /64 (one
 * host usually holds a whole /64, so counting per /128 would be no limit at all), or as the IPv4
 * address it maps (::ffff:a.b.c.d). Anything unparsable counts as itself; no address at all
 * (a socket already destroyed has none) as the empty string.
 */
export function addressKey(ip: string | undefined): string {
  if (ip === undefined) return '';
  if (!ip.includes(':')) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (RFC 4291 §2.2 text forms, zone id ignored), or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  let address = text.split('%')[0]!.toLowerCase();
  // A dotted IPv4 tail (§2.2 form 3) is two groups.
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (dotted) {
    const octets = dotted.slice(2).map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    address = `${dotted[1]}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return all.map((g) => parseInt(g, 16));
}
