import type { CryptoKey, KeyObject } from 'jose';

/**
 * What the protocol core needs of signing keys, and nothing more: the active key to sign
 * with, and the key to verify a `kid` with. Both answer from memory (no database read on the
 * token hot path); the key manager behind them loads, rotates and publishes the keys.
 */
/**
 * The JWS algorithms Latchkey signs and verifies with (RFC 7518 §3.1, RFC 8037 §3.1): the key
 * manager's keys, access tokens, client assertions and signed responses all read this one list.
 */
export const SIGNING_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey | KeyObject;
}

export interface VerificationKey {
  kid: string;
  alg: SigningAlg;
  publicKey: CryptoKey | KeyObject;
}

export interface KeyRing {
  /** The algorithm used when a client asks for none in particular. */
  readonly defaultAlg: SigningAlg;
  /** The algorithms that have an active key (discovery advertises these). */
  algorithms(): SigningAlg[];
  /** The active key for `alg` (default: `defaultAlg`); throws when there is none. */
  signingKey(alg?: SigningAlg): SigningKey;
  /**
   * The key a token signed with `kid` verifies against, or undefined when the kid is unknown,
   * removed or revoked (a token signed by a revoked key is invalid at once).
   */
  verificationKey(kid: string): VerificationKey | undefined;
}
