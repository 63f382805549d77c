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
      'Start with the secret the keys were created under (to change it, set the new one as KEY_ENCRYPTION_SECRET and the old one as ' +
      'KEY_ENCRYPTION_SECRET_PREVIOUS, then run `latchkey keys re-encrypt`); a new key would orphan every token already issued.');
    this.name = 'KeyDecryptionError';
  }
}

/** The HKDF salt and info a use of the key-encryption secret derives its own AES key with. */
export interface EncryptionScheme { salt: string; info: string }

/**
 * The key-encryption secrets in force: `current` encrypts everything; while the secret is being
 * changed, `previous` (KEY_ENCRYPTION_SECRET_PREVIOUS) still decrypts what was written under it,
 * until `latchkey keys re-encrypt` has sealed every stored value under the current one.
 */
export interface KeyEncryptionSecrets {
  current: string;
  previous?: string | undefined;
}

/** A secret alone, or the current and previous ones. */
export function secretsOf(secrets: string | KeyEncryptionSecrets): KeyEncryptionSecrets {
  return typeof secrets === 'string' ? { current: secrets } : secrets;
}

/** The 32-byte key a use (`scheme`) derives from each secret in force: current first, then previous. */
export function derivedKeys(secrets: string | KeyEncryptionSecrets, scheme: EncryptionScheme): Buffer[] {
  const { current, previous } = secretsOf(secrets);
  return [current, ...(previous !== undefined && previous !== current ? [previous] : [])]
    .map((secret) => Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), scheme.salt, scheme.info, 32)));
}

export class KeyEncryption {
  /** Current key first (the only one that encrypts), then the previous secret's. */
  private readonly keys: Buffer[];

  /** `scheme` lets another use (refresh token successors) derive a key of its own from the same secret. */
  constructor(secrets: string | KeyEncryptionSecrets, scheme: EncryptionScheme = { salt: HKDF_SALT, info: HKDF_INFO }) {
    this.keys = derivedKeys(secrets, scheme);
  }

  /** Whether a previous secret is still accepted for decryption. */
  get hasPrevious(): boolean {
    return this.keys.length > 1;
  }

  encrypt(kid: string, plaintext: string): EncryptedPrivateKey {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys[0]!, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(kid, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return { ciphertext: body.toString('base64url'), nonce: nonce.toString('base64url') };
  }

  /** Throws KeyDecryptionError when the tag does not verify under any secret in force (wrong secret, tampered row, other kid). */
  decrypt(kid: string, encrypted: EncryptedPrivateKey): string {
    return this.open(kid, encrypted).plaintext;
  }

  /** Decrypts under the current secret, else the previous one; says which (`current: false`: re-encrypt it). */
  open(kid: string, encrypted: EncryptedPrivateKey): { plaintext: string; current: boolean } {
    const body = Buffer.from(encrypted.ciphertext, 'base64url');
    const nonce = Buffer.from(encrypted.nonce, 'base64url');
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new KeyDecryptionError(kid);
    for (const [i, key] of this.keys.entries()) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(kid, 'utf8'));
        decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
        const plaintext = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
        return { plaintext, current: i === 0 };
      } catch {
        // the next secret in force, if any
      }
    }
    throw new KeyDecryptionError(kid);
  }
}

/** What re-encrypting one table did: rows re-sealed under the current secret, and how many of them were under the previous one. */
export interface ReEncryptionCount {
  table: string;
  reEncrypted: number;
  fromPrevious: number;
}

/**
 * A table holding values sealed under the key-encryption secret, which `keys re-encrypt` re-seals
 * under the current secret in one transaction. The signing keys are one; a capability with sealed
 * values of its own (TOTP secrets) contributes another.
 */
export interface SealedTable {
  table: string;
  reEncrypt(): Promise<ReEncryptionCount>;
}
