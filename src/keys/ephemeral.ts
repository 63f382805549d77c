import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import type { KeyRing, SigningAlg, SigningKey, VerificationKey } from './keyring.js';

/**
 * A key ring holding one key generated in memory per algorithm, never stored and never
 * rotated. It stands in until the persistent, rotating key manager is wired; tests of
 * capabilities that only need "a key to sign with" can keep using it.
 */
export async function ephemeralKeyRing(algs: SigningAlg[] = ['ES256']): Promise<KeyRing> {
  const signing = new Map<SigningAlg, SigningKey>();
  const verifying = new Map<string, VerificationKey>();
  for (const alg of algs) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    const kid = randomUUID();
    // Re-import the public half so the object is a plain public key regardless of the runtime.
    const pub = await importJWK(await exportJWK(publicKey), alg);
    signing.set(alg, { kid, alg, privateKey });
    verifying.set(kid, { kid, alg, publicKey: pub as VerificationKey['publicKey'] });
  }
  const defaultAlg = algs[0]!;
  return {
    defaultAlg,
    algorithms: () => [...signing.keys()],
    signingKey(alg = defaultAlg) {
      const key = signing.get(alg);
      if (!key) throw new Error(`no active signing key for ${alg}`);
      return key;
    },
    verificationKey: (kid) => verifying.get(kid),
  };
}
