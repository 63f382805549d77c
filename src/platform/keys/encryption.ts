import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Private signing keys at rest: AES-256-GCM under a key derived from KEY_ENCRYPTION_SECRET with
 * HKDF-SHA256 (RFC 5869). Salt and info are fixed and versioned, so the same secret always
 * derives the same key and a future scheme can derive a different one. Each row gets a fresh
 * random 96-bit nonce (NIST SP 800-38D §8.2.2), and the kid is the additional authenticated
 * data: a ciphertext copied onto another row does not decrypt.
 */
const HKDF_SALT = 'latchkey/signing-keys/v1';
const HKDF_INFO = 'AES-256-GCM private signing key encryption';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface EncryptedPrivateKey {
  /** base64url(ciphertext ‖ 16-byte tag). */
  ciphertext: string;
  /** base64url of the 96-bit nonce. */
  nonce: string;
}

/** The stored keys do not decrypt under the configured secret: a start-up error, never a new key. */
export class KeyDecryptionError extends Error {
  constructor(readonly kid: string) {
    super(`KEY_ENCRYPTION_SECRET does not decrypt the signing keys in the database (kid ${kid}). ` +
      'Start with the secret the keys were created under; a new key would orphan every token already issued.');
    this.name = 'KeyDecryptionError';
  }
}

/** The HKDF salt and info a use of the key-encryption secret derives its own AES key with. */
export interface EncryptionScheme { salt: string; info: string }

export class KeyEncryption {
  private readonly key: Buffer;

  /** `scheme` lets another use (refresh token successors) derive a key of its own from the same secret. */
  constructor(secret: string, scheme: EncryptionScheme = { salt: HKDF_SALT, info: HKDF_INFO }) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), scheme.salt, scheme.info, 32));
  }

  encrypt(kid: string, plaintext: string): EncryptedPrivateKey {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(kid, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext: body.toString('base64url'), nonce: nonce.toString('base64url') };
  }

  /** Throws KeyDecryptionError when the tag does not verify (wrong secret, tampered row, other kid). */
  decrypt(kid: string, encrypted: EncryptedPrivateKey): string {
    const body = Buffer.from(encrypted.ciphertext, 'base64url');
    const nonce = Buffer.from(encrypted.nonce, 'base64url');
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new KeyDecryptionError(kid);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(kid, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new KeyDecryptionError(kid);
    }
  }
}
