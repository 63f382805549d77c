import { describe, expect, it } from 'vitest';
import { addressKey, FixedWindowCounter } from '../../src/platform/fixed-window.js';

describe('FixedWindowCounter', () => {
  it('counts per key within a window and starts a new window after it', () => {
    const c = new FixedWindowCounter(1000);
    expect(c.add('a', 0)).toEqual({ count: 1, endsAt: 1000 });
    expect(c.add('a', 999)).toEqual({ count: 2, endsAt: 1000 });
    expect(c.add('b', 500)).toEqual({ count: 1, endsAt: 1500 });
    expect(c.peek('a', 999)).toEqual({ count: 2, endsAt: 1000 });
    expect(c.add('a', 1000)).toEqual({ count: 1, endsAt: 2000 });
    expect(c.peek('b', 1500)).toBeUndefined();
    expect(c.peek('never', 0)).toBeUndefined();
  });

  it('takes back one event of a key in its current window only, never below zero', () => {
    const c = new FixedWindowCounter(1000);
    c.add('a', 0); c.add('a', 1);
    c.release('a', 2);
    expect(c.peek('a', 3)).toEqual({ count: 1, endsAt: 1000 });
    c.release('a', 4); c.release('a', 5);
    expect(c.peek('a', 6)).toEqual({ count: 0, endsAt: 1000 });
    c.release('never', 7);
    expect(c.peek('never', 7)).toBeUndefined();
    c.release('a', 1000);
    expect(c.add('a', 1000)).toEqual({ count: 1, endsAt: 2000 });
  });

  it('holds at most `capacity` keys, forgetting the one whose window started first', () => {
    const c = new FixedWindowCounter(10_000, 2);
    c.add('a', 0); c.add('a', 1);
    c.add('b', 2);
    c.add('c', 3);
    expect(c.peek('a', 4)).toBeUndefined();
    expect(c.peek('b', 4)).toEqual({ count: 1, endsAt: 10_002 });
    expect(c.peek('c', 4)).toEqual({ count: 1, endsAt: 10_003 });
  });

  it('gives Retry-After seconds rounded up, at least 1', () => {
    expect(FixedWindowCounter.secondsUntil(2500, 1000)).toBe(2);
    expect(FixedWindowCounter.secondsUntil(1000, 1000)).toBe(1);
    expect(FixedWindowCounter.secondsUntil(61_000, 1000)).toBe(60);
  });
});

describe('addressKey', () => {
  it('keeps an IPv4 address, counts an IPv6 address by its /64 and a mapped IPv4 address as IPv4', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:ffff:0:0:3')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:c000:207')).toBe('192.0.2.7');
    expect(addressKey('64:ff9b::192.0.2.7')).toBe('64:ff9b:0:0::/64');
    expect(addressKey('1:2:3:4:5:6:7:8')).toBe('1:2:3:4::/64');
  });

  it('counts a request whose socket has no address any more as the empty key', () => {
    expect(addressKey(undefined)).toBe('');
  });

  it('counts text that is no IPv6 address as itself', () => {
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3', 'g::1', '::ffff:300.1.1.1', '1:2:3:4:5:6:7::8:9']) expect(addressKey(bad)).toBe(bad);
  });
});
