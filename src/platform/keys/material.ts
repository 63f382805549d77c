import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { SigningAlg } from './keyring.js';

/** The public members a JWK may carry, per key type (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2). */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;

export interface GeneratedKey {
  kid: string;
  alg: SigningAlg;
  /** Public members only. */
  publicJwk: JWK;
  /** The private JWK, serialised: it exists only to be encrypted, never logged or stored as is. */
  privateJwkJson: string;
}

/** Generates a key pair for `alg`: P-256, Ed25519, or RSA 2048 (RS256/PS256, RFC 7518 §3.3). */
export async function generateSigningKey(alg: SigningAlg): Promise<GeneratedKey> {
  const options = alg === 'EdDSA' ? { crv: 'Ed25519' } : alg === 'RS256' || alg === 'PS256' ? { modulusLength: 2048 } : {};
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const publicJwk = publicMembers(await exportJWK(publicKey));
  // The kid is the JWK SHA-256 thumbprint (RFC 7638): derived from the key, unique, not guessable as a sequence.
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return { kid, alg, publicJwk, privateJwkJson: JSON.stringify(await exportJWK(privateKey)) };
}

export function publicMembers(jwk: JWK): JWK {
  const out: JWK = {};
  for (const name of PUBLIC_MEMBERS) if (jwk[name] !== undefined) (out as Record<string, unknown>)[name] = jwk[name];
  return out;
}

/** The JWK as published in the JWKS (RFC 7517 §5): public members, kid, alg, use "sig". */
export function publishedJwk(kid: string, alg: SigningAlg, publicJwk: Record<string, unknown>): JWK {
  return { ...publicMembers(publicJwk as JWK), kid, alg, use: 'sig' };
}

export async function importPrivateKey(alg: SigningAlg, privateJwkJson: string): Promise<CryptoKey | KeyObject> {
  return importJWK(JSON.parse(privateJwkJson) as JWK, alg) as Promise<CryptoKey | KeyObject>;
}

export async function importPublicKey(alg: SigningAlg, publicJwk: Record<string, unknown>): Promise<CryptoKey | KeyObject> {
  return importJWK(publicMembers(publicJwk as JWK), alg) as Promise<CryptoKey | KeyObject>;
}
