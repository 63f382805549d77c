import { describe, expect, it } from 'vitest';
import { ClientAuthBackoff } from '../../src/oauth/client-auth/failure-backoff.js';
import { ManualClock } from '../support/clock.js';

describe('ClientAuthBackoff', () => {
  it('blocks a key once its failures reach the limit, until the window ends', () => {
    const clock = new ManualClock();
    const backoff = new ClientAuthBackoff(clock, 3, 60);
    backoff.recordFailure('10.0.0.1');
    backoff.recordFailure('10.0.0.1');
    expect(backoff.retryAfter('10.0.0.1')).toBeUndefined();
    clock.advance(20);
    backoff.recordFailure('10.0.0.1');
    expect(backoff.retryAfter('10.0.0.1')).toBe(40);
    expect(backoff.retryAfter('10.0.0.2')).toBeUndefined();
    clock.advance(40);
    expect(backoff.retryAfter('10.0.0.1')).toBeUndefined();
    backoff.recordFailure('10.0.0.1');
    expect(backoff.retryAfter('10.0.0.1')).toBeUndefined();
  });

  it('holds at most `capacity` keys, dropping the oldest', () => {
    const clock = new ManualClock();
    const backoff = new ClientAuthBackoff(clock, 1, 60, 2);
    for (const key of ['a', 'b', 'c']) backoff.recordFailure(key);
    expect(backoff.retryAfter('a')).toBeUndefined();
    expect(backoff.retryAfter('b')).toBe(60);
    expect(backoff.retryAfter('c')).toBe(60);
  });
});
