import { exportJWK, generateKeyPair, SignJWT, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClientKeys, type ClientKeysOptions } from '../../src/oauth/client-auth/client-keys.js';
import type { OutboundRequest, OutboundResponse } from '../../src/platform/outbound/fetcher.js';
import { OutboundError } from '../../src/platform/outbound/fetcher.js';
import { ManualClock } from '../support/clock.js';
import { testClient } from '../support/kernel.js';

/**
 * Key sets from clients' jwks_uri (src/oauth/client-auth/client-keys.ts), against an in-memory
 * fetcher: fetched once and then served from memory, refreshed off the request path, refetched
 * for an unknown kid within a cooldown, and bounded in size, keys, entries and bytes.
 */

let keys: Array<{ kid: string; privateKey: CryptoKey; jwk: JWK }>;
beforeAll(async () => {
  keys = await Promise.all(['k1', 'k2'].map(async (kid) => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256' } };
  }));
});

/** A fetcher serving a JWKS per URI; each fetch waits for `release` when `hold` is set. */
class FakeFetcher {
  readonly requests: OutboundRequest[] = [];
  readonly sets = new Map<string, unknown>();
  failure: Error | undefined;
  hold: Promise<void> | undefined;
  async fetch(request: OutboundRequest): Promise<OutboundResponse> {
    this.requests.push(request);
    if (this.hold) await this.hold;
    if (this.failure) throw this.failure;
    const body = Buffer.from(typeof this.sets.get(request.url) === 'string' ? this.sets.get(request.url) as string : JSON.stringify(this.sets.get(request.url) ?? { keys: [] }));
    return { status: 200, headers: { 'content-type': 'application/json' }, body };
  }
  count(url: string): number {
    return this.requests.filter((r) => r.url === url).length;
  }
}

const URI = 'https://rp.example.com/jwks';
const setup = (options: Partial<ClientKeysOptions> = {}) => {
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const fetcher = new FakeFetcher();
  const clientKeys = new ClientKeys({ fetcher, clock, maxBytes: 64 * 1024, maxKeys: 5, cacheEntries: 100, cacheBytes: 1024 * 1024, ...options });
  const client = (uri = URI) => testClient('rp', { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: uri });
  const sign = (kid: string) => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('rp').sign(keys.find((k) => k.kid === kid)!.privateKey);
  const verify = async (kid: string, uri = URI) => jwtVerify(await sign(kid), clientKeys.keysFor(client(uri)));
  return { clock, fetcher, clientKeys, verify };
};
const setOf = (...kids: string[]) => ({ keys: kids.map((kid) => keys.find((k) => k.kid === kid)!.jwk) });

describe('client keys from a jwks_uri', () => {
  it('fetches the set once through the outbound fetcher, capped and typed, and then serves it from memory', async () => {
    const { fetcher, verify } = setup();
    fetcher.sets.set(URI, setOf('k1'));
    // Concurrent first requests share one fetch.
    await Promise.all(Array.from({ length: 10 }, () => verify('k1')));
    for (let i = 0; i < 10; i++) await verify('k1');
    expect(fetcher.requests).toEqual([{
      url: URI, purpose: 'jwks_uri', maxBytes: 64 * 1024, contentTypes: ['application/jwk-set+json', 'application/json'],
      headers: { accept: 'application/jwk-set+json, application/json' },
    }]);
  });

  it('an old set is served at once while one refresh runs in the background; a failed refresh drops it', async () => {
    const { clock, fetcher, verify } = setup({ maxAgeMs: 600_000 });
    fetcher.sets.set(URI, setOf('k1'));
    await verify('k1');
    clock.advance(601);
    let release!: () => void;
    fetcher.hold = new Promise((r) => { release = r; });
    // The refresh hangs: the requests do not wait for it.
    await verify('k1');
    await verify('k1');
    expect(fetcher.count(URI)).toBe(2);
    fetcher.failure = new OutboundError('timeout', 'timeout');
    release();
    fetcher.hold = undefined;
    await expect.poll(async () => (await verify('k1').then(() => 'ok', (e: Error) => e.message))).toBe('jwks_uri: timeout (not retried for 30s)');
    expect(fetcher.count(URI)).toBe(2);
    clock.advance(31);
    fetcher.failure = undefined;
    await verify('k1');
    expect(fetcher.count(URI)).toBe(3);
  });

  it('an unknown kid refetches the set (the client rotated), at most once per cooldown', async () => {
    const { clock, fetcher, verify } = setup();
    fetcher.sets.set(URI, setOf('k1'));
    await verify('k1');
    fetcher.sets.set(URI, setOf('k1', 'k2'));
    // Within the cooldown of the fetch just made: the set is not fetched again.
    await expect(verify('k2')).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    clock.advance(31);
    await verify('k2');
    await verify('k1');
    expect(fetcher.count(URI)).toBe(2);
  });

  it('a kid miss within the cooldown does not fetch; after it, it does', async () => {
    const { clock, fetcher, clientKeys } = setup();
    fetcher.sets.set(URI, setOf('k1'));
    const rp = testClient('rp', { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: URI });
    const stranger = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k9' }).setIssuer('rp').sign(keys[0]!.privateKey);
    await expect(jwtVerify(stranger, clientKeys.keysFor(rp))).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(fetcher.count(URI)).toBe(1); // the first fetch was just made: no second one
    for (let i = 0; i < 20; i++) await expect(jwtVerify(stranger, clientKeys.keysFor(rp))).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(fetcher.count(URI)).toBe(1);
    clock.advance(31);
    await expect(jwtVerify(stranger, clientKeys.keysFor(rp))).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(fetcher.count(URI)).toBe(2);
  });

  it('a failed first fetch fails the requests of the next cooldown at once, without fetching', async () => {
    const { clock, fetcher, verify } = setup();
    fetcher.failure = new OutboundError('refused', 'refused: must not point at an internal address (10.0.0.1 is private)');
    await expect(verify('k1')).rejects.toThrow('jwks_uri: refused: must not point at an internal address (10.0.0.1 is private)');
    for (let i = 0; i < 10; i++) await expect(verify('k1')).rejects.toThrow(/^jwks_uri: refused: .* \(not retried for \d+s\)$/);
    expect(fetcher.count(URI)).toBe(1);
    clock.advance(30);
    fetcher.failure = undefined;
    fetcher.sets.set(URI, setOf('k1'));
    await verify('k1');
    expect(fetcher.count(URI)).toBe(2);
  });

  it.each([
    ['{"keys": [', 'jwks_uri: not JSON'],
    ['<html>secret internal page</html>', 'jwks_uri: not JSON'],
    ['{"no":"keys"}', 'jwks_uri: not a JWK set (no keys array)'],
    ['null', 'jwks_uri: not a JWK set (no keys array)'],
    ['{"keys":[1]}', 'jwks_uri: JSON Web Key Set malformed'],
  ])('refuses %s', async (body, message) => {
    const { fetcher, verify } = setup();
    fetcher.sets.set(URI, body);
    await expect(verify('k1')).rejects.toThrow(message);
  });

  it('refuses a set with more keys than maxKeys', async () => {
    const { fetcher, verify } = setup({ maxKeys: 5 });
    fetcher.sets.set(URI, { keys: [...setOf('k1').keys, ...Array.from({ length: 5 }, (_, i) => ({ ...keys[1]!.jwk, kid: `pad-${i}` }))] });
    await expect(verify('k1')).rejects.toThrow('jwks_uri: 6 keys, more than 5');
  });

  it('holds at most cacheEntries URIs and cacheBytes bytes, least recently used dropped first', async () => {
    const body = JSON.stringify(setOf('k1'));
    const { fetcher, clientKeys, verify } = setup({ cacheEntries: 3, cacheBytes: body.length * 2 });
    const uris = ['a', 'b', 'c', 'd'].map((n) => `https://${n}.example.com/jwks`);
    for (const uri of uris) fetcher.sets.set(uri, setOf('k1'));
    await verify('k1', uris[0]);
    await verify('k1', uris[1]);
    expect(clientKeys.size()).toEqual({ entries: 2, bytes: body.length * 2 });
    await verify('k1', uris[0]); // a used last
    await verify('k1', uris[2]); // over the bytes: b goes
    expect(clientKeys.size()).toEqual({ entries: 2, bytes: body.length * 2 });
    await verify('k1', uris[0]);
    await verify('k1', uris[1]); // fetched again
    expect(uris.map((u) => fetcher.count(u))).toEqual([1, 2, 1, 0]);

    const many = setup({ cacheEntries: 3, cacheBytes: 1024 * 1024 });
    for (const uri of uris) many.fetcher.sets.set(uri, setOf('k1'));
    for (const uri of uris) await many.verify('k1', uri);
    expect(many.clientKeys.size()).toEqual({ entries: 3, bytes: body.length * 3 });
  });
});
