import { describe, expect, it } from 'vitest';
import { KeyDecryptionError, KeyEncryption } from '../../src/platform/keys/encryption.js';

const SECRET = 'unit-test-key-encryption-secret-0123456789';

describe('private signing keys at rest (AES-256-GCM under an HKDF-derived key)', () => {
  it('decrypts what it encrypted, for the same kid', () => {
    const enc = new KeyEncryption(SECRET);
    const sealed = enc.encrypt('kid-1', '{"d":"private"}');
    expect(new KeyEncryption(SECRET).decrypt('kid-1', sealed)).toBe('{"d":"private"}');
  });

  it('uses a fresh 96-bit nonce for every row', () => {
    const enc = new KeyEncryption(SECRET);
    const a = enc.encrypt('kid-1', 'same');
    const b = enc.encrypt('kid-1', 'same');
    expect(Buffer.from(a.nonce, 'base64url')).toHaveLength(12);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(a.ciphertext).not.toContain('same');
  });

  it('refuses a different secret with an error naming KEY_ENCRYPTION_SECRET', () => {
    const sealed = new KeyEncryption(SECRET).encrypt('kid-1', 'x');
    expect(() => new KeyEncryption(`${SECRET}-other`).decrypt('kid-1', sealed)).toThrow(KeyDecryptionError);
    expect(() => new KeyEncryption(`${SECRET}-other`).decrypt('kid-1', sealed)).toThrow(
      'KEY_ENCRYPTION_SECRET does not decrypt the signing keys in the database (kid kid-1)',
    );
  });

  it('binds the ciphertext to its kid (associated data): moved to another row it does not decrypt', () => {
    const enc = new KeyEncryption(SECRET);
    const sealed = enc.encrypt('kid-1', 'x');
    expect(() => enc.decrypt('kid-2', sealed)).toThrow(KeyDecryptionError);
  });

  it('detects a tampered ciphertext', () => {
    const enc = new KeyEncryption(SECRET);
    const sealed = enc.encrypt('kid-1', 'some private key material');
    const bytes = Buffer.from(sealed.ciphertext, 'base64url');
    bytes[0] = bytes[0]! ^ 1;
    expect(() => enc.decrypt('kid-1', { ...sealed, ciphertext: bytes.toString('base64url') })).toThrow(KeyDecryptionError);
  });
});
