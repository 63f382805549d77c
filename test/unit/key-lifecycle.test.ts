import { describe, expect, it } from 'vitest';
import type { SigningAlg } from '../../src/platform/keys/keyring.js';
import { KeyLifecycleError, planRevocation, planRotation, planScheduled, type KeyPolicy, type KeyRecord } from '../../src/platform/keys/lifecycle.js';

const DAY = 86400;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY * 1000);
const policy: KeyPolicy = { algs: ['ES256'], rotationIntervalSeconds: 30 * DAY, publishAheadSeconds: DAY, retentionSeconds: 3600 + 300 + 60 };

function key(kid: string, state: KeyRecord['state'], createdDays: number, extra: Partial<KeyRecord> = {}, alg: SigningAlg = 'ES256'): KeyRecord {
  return {
    kid, alg, state, createdAt: at(createdDays), activatedAt: state === 'active' ? at(createdDays) : null,
    retiredAt: null, removedAt: null, revokedAt: null, revokedReason: null, ...extra,
  };
}

describe('key lifecycle decisions', () => {
  it('on the very first start creates an active key (usable at once) and a next key per algorithm', () => {
    expect(planScheduled([], { ...policy, algs: ['ES256', 'EdDSA'] }, T0)).toEqual([
      { kind: 'create', alg: 'ES256', state: 'active' }, { kind: 'create', alg: 'ES256', state: 'next' },
      { kind: 'create', alg: 'EdDSA', state: 'active' }, { kind: 'create', alg: 'EdDSA', state: 'next' },
    ]);
  });

  it('publishes an algorithm added later ahead, activating it only after the publish-ahead period', () => {
    const existing = [key('a', 'active', 0), key('n', 'next', 0)];
    const withRsa = { ...policy, algs: ['ES256', 'RS256'] as SigningAlg[] };
    expect(planScheduled(existing, withRsa, at(1))).toEqual([{ kind: 'create', alg: 'RS256', state: 'next' }]);
    const rsaNext = key('r', 'next', 1, {}, 'RS256');
    expect(planScheduled([...existing, rsaNext], withRsa, at(1.5))).toEqual([]);
    expect(planScheduled([...existing, rsaNext], withRsa, at(2))).toEqual([
      { kind: 'activate', kid: 'r', alg: 'RS256', trigger: 'scheduled', early: false },
      { kind: 'create', alg: 'RS256', state: 'next' },
    ]);
  });

  it('does nothing before the rotation interval', () => {
    expect(planScheduled([key('a', 'active', 0), key('n', 'next', 0)], policy, at(29.9))).toEqual([]);
  });

  it('rotates when due: retires the active key, activates the next, creates a new next', () => {
    expect(planScheduled([key('a', 'active', 0), key('n', 'next', 0)], policy, at(30))).toEqual([
      { kind: 'retire', kid: 'a', alg: 'ES256' },
      { kind: 'activate', kid: 'n', alg: 'ES256', trigger: 'scheduled', early: false },
      { kind: 'create', alg: 'ES256', state: 'next' },
    ]);
  });

  it('waits for a next key younger than the publish-ahead period even when rotation is due', () => {
    const records = [key('a', 'active', 0), key('n', 'next', 29.5)];
    expect(planScheduled(records, policy, at(30))).toEqual([]);
    expect(planScheduled(records, policy, at(30.5))[1]).toEqual({ kind: 'activate', kid: 'n', alg: 'ES256', trigger: 'scheduled', early: false });
  });

  it('removes a retired key only once the retention has passed since its retirement', () => {
    const retiredAt = at(30);
    const records = [key('old', 'retired', 0, { retiredAt }), key('a', 'active', 30), key('n', 'next', 30)];
    const justBefore = new Date(retiredAt.getTime() + (policy.retentionSeconds - 1) * 1000);
    const exactly = new Date(retiredAt.getTime() + policy.retentionSeconds * 1000);
    expect(planScheduled(records, policy, justBefore)).toEqual([]);
    expect(planScheduled(records, policy, exactly)).toEqual([{ kind: 'remove', kid: 'old', alg: 'ES256', from: 'retired' }]);
  });

  it('stops signing with an algorithm dropped from SIGNING_ALGS: retires its active key, removes its unused next', () => {
    const records = [key('a', 'active', 0), key('n', 'next', 0), key('e', 'active', 0, {}, 'EdDSA'), key('en', 'next', 0, {}, 'EdDSA')];
    expect(planScheduled(records, policy, at(1))).toEqual([
      { kind: 'retire', kid: 'e', alg: 'EdDSA' },
      { kind: 'remove', kid: 'en', alg: 'EdDSA', from: 'next' },
    ]);
  });

  it('on demand promotes the next key now, flagging it early when it was published for less than publish-ahead', () => {
    expect(planRotation([key('a', 'active', 0), key('n', 'next', 0.5)], policy, at(1))).toEqual([
      { kind: 'retire', kid: 'a', alg: 'ES256' },
      { kind: 'activate', kid: 'n', alg: 'ES256', trigger: 'manual', early: true },
      { kind: 'create', alg: 'ES256', state: 'next' },
    ]);
    expect(planRotation([key('a', 'active', 0), key('n', 'next', 0)], policy, at(1))[1]).toMatchObject({ early: false });
    expect(() => planRotation([], policy, at(1))).toThrow(KeyLifecycleError);
    expect(() => planRotation([key('a', 'active', 0), key('n', 'next', 0)], policy, at(1), 'RS256')).toThrow('RS256 is not in SIGNING_ALGS (ES256)');
  });

  it('revoking the active key promotes the next at once and creates a new next', () => {
    expect(planRevocation([key('a', 'active', 0), key('n', 'next', 0)], policy, at(1), 'a', 'leaked')).toEqual([
      { kind: 'revoke', kid: 'a', alg: 'ES256', from: 'active', reason: 'leaked' },
      { kind: 'activate', kid: 'n', alg: 'ES256', trigger: 'revoke', early: false },
      { kind: 'create', alg: 'ES256', state: 'next' },
    ]);
  });

  it('revoking a next key replaces it; revoking a retired key only revokes it', () => {
    const records = [key('old', 'retired', 0, { retiredAt: at(30) }), key('a', 'active', 30), key('n', 'next', 30)];
    expect(planRevocation(records, policy, at(31), 'n', null)).toEqual([
      { kind: 'revoke', kid: 'n', alg: 'ES256', from: 'next', reason: null },
      { kind: 'create', alg: 'ES256', state: 'next' },
    ]);
    expect(planRevocation(records, policy, at(31), 'old', null)).toEqual([{ kind: 'revoke', kid: 'old', alg: 'ES256', from: 'retired', reason: null }]);
  });

  it('refuses to revoke an unknown, removed or already revoked key', () => {
    const records = [key('gone', 'removed', 0), key('bad', 'revoked', 0)];
    expect(() => planRevocation(records, policy, at(1), 'nope', null)).toThrow('there is no signing key with kid nope');
    expect(() => planRevocation(records, policy, at(1), 'gone', null)).toThrow('signing key gone is already removed');
    expect(() => planRevocation(records, policy, at(1), 'bad', null)).toThrow('signing key bad is already revoked');
  });
});
