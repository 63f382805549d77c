import { describe, expect, it } from 'vitest';
import { KeyDecryptionError, KeyEncryption } from '../../src/platform/keys/encryption.js';
import { KnownDeviceCookies } from '../../src/users/known-device.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

describe('changing KEY_ENCRYPTION_SECRET: the previous secret still decrypts, only the current one encrypts', () => {
  it('opens a value sealed under the previous secret and says it was not the current one', () => {
    const sealed = new KeyEncryption(A).encrypt('kid-1', 'private');
    expect(new KeyEncryption({ current: B, previous: A }).open('kid-1', sealed)).toEqual({ plaintext: 'private', current: false });
  });

  it('seals under the current secret: the previous one alone cannot open it', () => {
    const sealed = new KeyEncryption({ current: B, previous: A }).encrypt('kid-1', 'private');
    expect(new KeyEncryption(B).open('kid-1', sealed)).toEqual({ plaintext: 'private', current: true });
    expect(() => new KeyEncryption(A).decrypt('kid-1', sealed)).toThrow(KeyDecryptionError);
  });

  it('without the previous secret a value sealed under it does not decrypt', () => {
    const sealed = new KeyEncryption(A).encrypt('kid-1', 'private');
    expect(() => new KeyEncryption(B).decrypt('kid-1', sealed)).toThrow(KeyDecryptionError);
  });

  it('a known-device cookie issued under the previous secret still verifies; a new one is signed under the current', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const old = new KnownDeviceCookies(A, 3600).issue('user-1', now);
    const changing = new KnownDeviceCookies({ current: B, previous: A }, 3600);
    expect(changing.verify(old, now)?.userId).toBe('user-1');
    const fresh = changing.issue('user-1', now);
    expect(new KnownDeviceCookies(B, 3600).verify(fresh, now)?.userId).toBe('user-1');
    expect(new KnownDeviceCookies(A, 3600).verify(fresh, now)).toBeUndefined();
  });
});
