import { describe, expect, it } from 'vitest';
import type { Client } from '../../src/oauth/client.js';
import { ClientCache } from '../../src/oauth/clients/cache.js';
import { TestClock } from '../support/clients.js';

const client = (clientId: string, version = 1) => ({ clientId, version } as unknown as Client);

function cacheWith(known: Map<string, Client>, options: Partial<ConstructorParameters<typeof ClientCache>[2]> = {}) {
  const clock = new TestClock();
  const loads: string[] = [];
  const cache = new ClientCache(async (id) => { loads.push(id); return known.get(id); }, clock, { maxEntries: 3, ttlSeconds: 60, ...options });
  return { cache, clock, loads };
}

describe('ClientCache', () => {
  it('loads once and answers from memory until the TTL runs out (a lost notification cannot keep a client forever)', async () => {
    const known = new Map([['a', client('a')]]);
    const { cache, clock, loads } = cacheWith(known);
    expect(await cache.get('a')).toBe(known.get('a'));
    await cache.get('a');
    expect(loads).toEqual(['a']);
    known.delete('a');
    clock.advance(61);
    expect(await cache.get('a')).toBeUndefined();
    expect(loads).toEqual(['a', 'a']);
  });

  it('shares one load between concurrent misses', async () => {
    const { cache, loads } = cacheWith(new Map([['a', client('a')]]));
    await Promise.all([cache.get('a'), cache.get('a'), cache.get('a')]);
    expect(loads).toEqual(['a']);
  });

  it('drops the least recently used client beyond maxEntries', async () => {
    const known = new Map(['a', 'b', 'c', 'd'].map((id) => [id, client(id)]));
    const { cache, loads } = cacheWith(known);
    for (const id of ['a', 'b', 'c']) await cache.get(id);
    await cache.get('a'); // a is now the most recent
    await cache.get('d'); // evicts b
    expect(cache.size.clients).toBe(3);
    loads.length = 0;
    await cache.get('a');
    await cache.get('b');
    expect(loads).toEqual(['b']);
  });

  it('remembers unknown ids in a small bounded map, and never looks up absurd ids', async () => {
    const { cache, loads } = cacheWith(new Map(), { maxNegativeEntries: 5 });
    for (let i = 0; i < 50; i++) await cache.get(`made-up-${i}`);
    expect(cache.size).toEqual({ clients: 0, unknown: 5 });
    await cache.get('made-up-49');
    expect(loads).toHaveLength(50);
    expect(await cache.get('x'.repeat(201))).toBeUndefined();
    expect(await cache.get('')).toBeUndefined();
    expect(loads).toHaveLength(50);
  });

  it('does not cache a load that raced with an invalidation', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let version = 1;
    const clock = new TestClock();
    const cache = new ClientCache(async (id) => { const v = version; await gate; return client(id, v); }, clock, { maxEntries: 10, ttlSeconds: 60 });
    const pending = cache.get('a');
    version = 2;
    cache.invalidate('a');
    release();
    expect(((await pending) as unknown as { version: number }).version).toBe(1);
    expect(((await cache.get('a')) as unknown as { version: number }).version).toBe(2);
  });
});
