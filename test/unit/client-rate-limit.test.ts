import { describe, expect, it } from 'vitest';
import { ClientRateLimit } from '../../src/oauth/client-auth/client-rate-limit.js';
import { TooManyRequests } from '../../src/oauth/errors.js';
import { ManualClock } from '../support/clock.js';

function refusal(fn: () => void): TooManyRequests {
  try { fn(); } catch (err) { return err as TooManyRequests; }
  throw new Error('expected a refusal');
}

describe('the per-client request limit', () => {
  it('admits `max` requests of a client per window, then 429 with Retry-After (RFC 6585 §4)', () => {
    const clock = new ManualClock();
    let refusals = 0;
    const limit = new ClientRateLimit(clock, 3, 60, () => { refusals += 1; });
    for (let i = 0; i < 3; i += 1) limit.admit('a');
    clock.advance(20);
    const err = refusal(() => limit.admit('a'));
    expect(err).toBeInstanceOf(TooManyRequests);
    expect(err).toMatchObject({ error: 'too_many_requests', status: 429, description: 'too many requests; retry after the time in Retry-After', headers: { 'Retry-After': '40' } });
    expect(refusals).toBe(1);
    // Each refused request counts as well, and is refused too.
    expect(refusal(() => limit.admit('a')).headers).toEqual({ 'Retry-After': '40' });
    expect(refusals).toBe(2);
  });
  it('counts each client on its own', () => {
    const clock = new ManualClock();
    const limit = new ClientRateLimit(clock, 1, 60);
    limit.admit('a');
    expect(() => limit.admit('b')).not.toThrow();
    expect(() => limit.admit('a')).toThrow(TooManyRequests);
  });
  it('starts a new window once the old one has ended', () => {
    const clock = new ManualClock();
    const limit = new ClientRateLimit(clock, 1, 60);
    limit.admit('a');
    clock.advance(59);
    expect(refusal(() => limit.admit('a')).headers['Retry-After']).toBe('1');
    clock.advance(1);
    expect(() => limit.admit('a')).not.toThrow();
    expect(() => limit.admit('a')).toThrow(TooManyRequests);
  });
  it('rounds Retry-After up to whole seconds, at least 1', () => {
    const clock = new ManualClock();
    const limit = new ClientRateLimit(clock, 1, 10);
    limit.admit('a');
    clock.advance(8.5);
    expect(refusal(() => limit.admit('a')).headers['Retry-After']).toBe('2');
    clock.advance(1.4);
    expect(refusal(() => limit.admit('a')).headers['Retry-After']).toBe('1');
  });
  it('a released request gives its count back, within the same window only', () => {
    const clock = new ManualClock();
    const limit = new ClientRateLimit(clock, 2, 60);
    limit.admit('a');
    limit.admit('a');
    limit.release('a');
    expect(() => limit.admit('a')).not.toThrow();
    expect(() => limit.admit('a')).toThrow(TooManyRequests);
    // A release for a client with no window, or after the window ended, changes nothing.
    limit.release('b');
    limit.admit('b');
    limit.admit('b');
    expect(() => limit.admit('b')).toThrow(TooManyRequests);
  });
  it('never lets a release take a window below zero', () => {
    const clock = new ManualClock();
    const limit = new ClientRateLimit(clock, 1, 60);
    limit.admit('a');
    limit.release('a');
    limit.release('a');
    limit.release('a');
    limit.admit('a');
    expect(() => limit.admit('a')).toThrow(TooManyRequests);
  });
  it('holds at most `capacity` clients, forgetting the oldest window first', () => {
    const clock = new ManualClock();
    const limit = new ClientRateLimit(clock, 1, 60, () => {}, 2);
    for (const id of ['a', 'b', 'c']) limit.admit(id);
    expect(() => limit.admit('a')).not.toThrow();
    expect(() => limit.admit('c')).toThrow(TooManyRequests);
  });
});
