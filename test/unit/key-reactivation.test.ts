import { describe, expect, it } from 'vitest';
import type { SigningAlg } from '../../src/platform/keys/keyring.js';
import { KeyLifecycleError, planReactivation, UnknownSigningKey, type KeyPolicy, type KeyRecord } from '../../src/platform/keys/lifecycle.js';

const DAY = 86400;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY * 1000);
const policy: KeyPolicy = { algs: ['ES256', 'EdDSA'], rotationIntervalSeconds: 30 * DAY, publishAheadSeconds: DAY, retentionSeconds: 3600 + 300 + 60 };

function key(kid: string, state: KeyRecord['state'], extra: Partial<KeyRecord> = {}, alg: SigningAlg = 'ES256'): KeyRecord {
  return {
    kid, alg, state, createdAt: at(0), activatedAt: null, retiredAt: null, removedAt: null, revokedAt: null, revokedReason: null, ...extra,
  };
}

// The keys right after a bad manual rotation: "old" was retired a minute ago, "bad" signs now.
const afterBadRotation = [
  key('old', 'retired', { activatedAt: at(0), retiredAt: at(10) }),
  key('bad', 'active', { activatedAt: at(10) }),
  key('n', 'next', { createdAt: at(10) }),
  key('ed-a', 'active', { activatedAt: at(0) }, 'EdDSA'),
  key('ed-n', 'next', {}, 'EdDSA'),
];

describe('re-activating a retired key (rollback of a bad rotation)', () => {
  it('retires the active key of that algorithm (still published) and makes the retired key active; the next key stays', () => {
    expect(planReactivation(afterBadRotation, policy, at(10.01), 'old')).toEqual([
      { kind: 'retire', kid: 'bad', alg: 'ES256' },
      { kind: 'reactivate', kid: 'old', alg: 'ES256' },
    ]);
  });

  it('leaves the other algorithms alone', () => {
    const plan = planReactivation(afterBadRotation, policy, at(10.01), 'old');
    expect(plan.some((t) => t.alg === 'EdDSA')).toBe(false);
  });

  it('re-activates without retiring anything when the algorithm has no active key', () => {
    const records = [key('old', 'retired', { retiredAt: at(10) }), key('n', 'next')];
    expect(planReactivation(records, policy, at(11), 'old')).toEqual([{ kind: 'reactivate', kid: 'old', alg: 'ES256' }]);
  });

  it('refuses an unknown kid with UnknownSigningKey', () => {
    expect(() => planReactivation(afterBadRotation, policy, at(11), 'nope')).toThrow(UnknownSigningKey);
  });

  it.each([
    ['revoked', { revokedAt: at(10), revokedReason: 'leaked' }],
    ['removed', { removedAt: at(10) }],
    ['active', {}],
    ['next', {}],
  ] as const)('refuses a %s key: only a retired key, still published, can sign again', (state, extra) => {
    const records = [key('k', state, extra), key('a', 'active', { kid: state === 'active' ? 'k' : 'a' })];
    expect(() => planReactivation(records, policy, at(11), 'k')).toThrow(KeyLifecycleError);
    expect(() => planReactivation(records, policy, at(11), 'k')).not.toThrow(UnknownSigningKey);
    expect(() => planReactivation(records, policy, at(11), 'k')).toThrow(`signing key k is ${state}: only a retired key (still published) can be re-activated`);
  });

  it('refuses a retired key of an algorithm no longer in SIGNING_ALGS', () => {
    const records = [key('rsa', 'retired', { retiredAt: at(10) }, 'RS256')];
    expect(() => planReactivation(records, policy, at(11), 'rsa')).toThrow('RS256 is not in SIGNING_ALGS (ES256, EdDSA)');
  });
});
