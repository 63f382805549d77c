import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../../platform/clock.js';
import type { OutboundFetcher } from '../../platform/outbound/fetcher.js';
import type { Client } from '../client.js';

/**
 * The verification keys of each client for private_key_jwt (RFC 7523 §2.2): its registered
 * `jwks`, or the set at its `jwks_uri`, fetched through the outbound fetcher and cached here —
 * the one cache of remote JWK sets, which trusted external issuers' jwks_uri use too (keySetAt).
 *
 * A jwks_uri set is fetched once and then served from memory: a token request never waits on a
 * fetch that was already made. Concurrent requests share one fetch. A set older than `maxAgeMs`
 * is still served, while one refresh runs in the background (a refresh that fails drops it); an
 * assertion naming a key the set lacks refetches it at once — the client may have rotated — at
 * most once per `cooldownMs`, and a failed fetch is not retried sooner either (requests fail at
 * once meanwhile). So one URI costs at most one request per cooldown, whatever is sent.
 *
 * Bounded: a response is at most `maxBytes` (the fetcher aborts beyond it) and `maxKeys` keys;
 * the cache holds at most `cacheEntries` URIs and `cacheBytes` bytes of sets (as received),
 * least recently used dropped first.
 */
export interface ClientKeysOptions {
  fetcher: Pick<OutboundFetcher, 'fetch'>;
  clock: Clock;
  /** JWKS_URI_MAX_BYTES */
  maxBytes: number;
  /** JWKS_URI_MAX_KEYS */
  maxKeys: number;
  /** JWKS_URI_CACHE_SIZE */
  cacheEntries: number;
  /** JWKS_URI_CACHE_BYTES */
  cacheBytes: number;
  /** How long a fetched set is fresh (default 10 minutes, as jose's remote sets). */
  maxAgeMs?: number;
  /** Least time between two fetches of one URI (default 30 s). */
  cooldownMs?: number;
}

/** RFC 7517 §8.5, and what most servers send. */
const JWKS_MEDIA_TYPES = ['application/jwk-set+json', 'application/json'];

/** A jwks_uri that gave no usable key set; the message says why in a few safe words (host only). */
export class JwksUriUnavailable extends Error {
  readonly code = 'ERR_JWKS_URI_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'JwksUriUnavailable';
  }
}

interface CachedSet {
  getKey: JWTVerifyGetKey;
  bytes: number;
  fetchedAt: number;
}

/** One URI's state: its set, the fetch under way, and the last attempt (for the cooldown). */
interface Slot {
  set?: CachedSet;
  loading?: Promise<CachedSet>;
  attemptAt: number;
  failure?: string;
}

export class ClientKeys {
  private readonly local = new WeakMap<Client, JWTVerifyGetKey>();
  private readonly slots = new Map<string, Slot>();
  private bytes = 0;
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;

  constructor(private readonly options: ClientKeysOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
  }

  keysFor(client: Client): JWTVerifyGetKey {
    const { jwks, jwks_uri: uri } = client.metadata;
    if (jwks) {
      let set = this.local.get(client);
      if (!set) { set = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]); this.local.set(client, set); }
      return set;
    }
    if (uri) return this.keySetAt(uri);
    return async () => { throw new Error('client has no keys'); };
  }

  /**
   * The keys of the JWK set at `uri`, through this cache: a client's jwks_uri, and a trusted
   * external issuer's (src/oauth/trusted-issuers/), so one bound and one cooldown cover both.
   */
  keySetAt(uri: string): JWTVerifyGetKey {
    return async (header, token) => {
      const set = await this.current(uri);
      try {
        return await set.getKey(header, token);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
        const refetched = await this.refetch(uri);
        if (!refetched) throw err;
        return refetched.getKey(header, token);
      }
    };
  }

  /** What the cache holds: URIs (a failed one too, for its cooldown) and bytes of sets. */
  size(): { entries: number; bytes: number } {
    return { entries: this.slots.size, bytes: this.bytes };
  }

  private now(): number {
    return this.options.clock.now().getTime();
  }

  /** The set to verify with now: cached (refreshed in the background when old), or fetched. */
  private async current(uri: string): Promise<CachedSet> {
    let slot = this.slots.get(uri);
    if (slot) {
      // Most recently used last: the eviction order.
      this.slots.delete(uri);
      this.slots.set(uri, slot);
    } else {
      slot = { attemptAt: -Infinity };
      this.slots.set(uri, slot);
      this.evict();
    }
    const now = this.now();
    if (slot.set) {
      if (now - slot.set.fetchedAt >= this.maxAgeMs && !slot.loading && now - slot.attemptAt >= this.cooldownMs) {
        this.load(uri, slot).catch(() => { /* counted by the fetcher; the next request sees the failure */ });
      }
      return slot.set;
    }
    if (slot.loading) return slot.loading;
    if (slot.failure !== undefined && now - slot.attemptAt < this.cooldownMs) {
      throw new JwksUnavailableCooling(slot.failure, Math.ceil((slot.attemptAt + this.cooldownMs - now) / 1000));
    }
    return this.load(uri, slot);
  }

  /** A fresh set after a key was not found, unless the cooldown forbids one (undefined). */
  private async refetch(uri: string): Promise<CachedSet | undefined> {
    const slot = this.slots.get(uri);
    if (!slot) return undefined;
    if (slot.loading) return slot.loading;
    if (this.now() - slot.attemptAt < this.cooldownMs) return undefined;
    return this.load(uri, slot);
  }

  /** Fetches the set into its slot; one fetch per slot at a time. */
  private load(uri: string, slot: Slot): Promise<CachedSet> {
    slot.attemptAt = this.now();
    const loading = this.fetchSet(uri).then(
      (set) => {
        if (this.slots.get(uri) === slot) {
          this.bytes += set.bytes - (slot.set?.bytes ?? 0);
          slot.set = set;
          slot.failure = undefined;
          this.evict();
        }
        return set;
      },
      (err: unknown) => {
        slot.failure = (err as Error).message;
        // A set past its age is not served after its refresh failed; a fresh one stays.
        if (slot.set && this.now() - slot.set.fetchedAt >= this.maxAgeMs) {
          if (this.slots.get(uri) === slot) this.bytes -= slot.set.bytes;
          slot.set = undefined;
        }
        throw err;
      },
    ).finally(() => { slot.loading = undefined; });
    slot.loading = loading;
    return loading;
  }

  private async fetchSet(uri: string): Promise<CachedSet> {
    const fetchedAt = this.now();
    let body: Buffer;
    try {
      const res = await this.options.fetcher.fetch({
        url: uri, purpose: 'jwks_uri', maxBytes: this.options.maxBytes, contentTypes: JWKS_MEDIA_TYPES,
        headers: { accept: JWKS_MEDIA_TYPES.join(', ') },
      });
      if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
      body = res.body;
    } catch (err) {
      throw new JwksUriUnavailable(`jwks_uri: ${(err as Error).message}`);
    }
    let jwks: unknown;
    try {
      jwks = JSON.parse(body.toString('utf8'));
    } catch {
      // Not the parser's message: it quotes the body.
      throw new JwksUriUnavailable('jwks_uri: not JSON');
    }
    const keys = (jwks as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new JwksUriUnavailable('jwks_uri: not a JWK set (no keys array)');
    if (keys.length > this.options.maxKeys) throw new JwksUriUnavailable(`jwks_uri: ${keys.length} keys, more than ${this.options.maxKeys}`);
    let getKey: JWTVerifyGetKey;
    try {
      getKey = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    } catch (err) {
      throw new JwksUriUnavailable(`jwks_uri: ${(err as Error).message}`);
    }
    return { getKey, bytes: body.length, fetchedAt };
  }

  /** Drops the least recently used URIs until both bounds hold (the newest always stays). */
  private evict(): void {
    while (this.slots.size > 1 && (this.slots.size > this.options.cacheEntries || this.bytes > this.options.cacheBytes)) {
      const [uri, slot] = this.slots.entries().next().value!;
      this.slots.delete(uri);
      this.bytes -= slot.set?.bytes ?? 0;
    }
  }
}

/** A fetch that failed less than a cooldown ago: not retried yet. */
class JwksUnavailableCooling extends JwksUriUnavailable {
  constructor(failure: string, retryInSeconds: number) {
    super(`${failure} (not retried for ${retryInSeconds}s)`);
  }
}
