import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { SigningAlg } from '../../src/keys/keyring.js';
import { signJwt } from '../../src/keys/jws.js';

describe('compact JWS signing', () => {
  for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256'] as SigningAlg[]) {
    it(`produces ${alg} tokens that jose verifies`, async () => {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
      const jwt = signJwt({ kid: 'k1', alg, privateKey }, { iss: 'https://id.example.com', sub: 'svc', n: 1 }, 'at+jwt');
      expect(decodeProtectedHeader(jwt)).toEqual({ alg, typ: 'at+jwt', kid: 'k1' });
      const { payload } = await jwtVerify(jwt, publicKey, { issuer: 'https://id.example.com', typ: 'at+jwt', algorithms: [alg] });
      expect(payload).toEqual({ iss: 'https://id.example.com', sub: 'svc', n: 1 });
    });
  }

  it('signs with a key imported from a JWK as well', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const imported = await importJWK(await exportJWK(privateKey), 'ES256');
    const jwt = signJwt({ kid: 'k2', alg: 'ES256', privateKey: imported as Exclude<typeof imported, Uint8Array> }, { a: 'b' }, 'JWT');
    await expect(jwtVerify(jwt, publicKey)).resolves.toMatchObject({ payload: { a: 'b' } });
  });

  it('yields a signature a different key does not verify', async () => {
    const one = await generateKeyPair('ES256');
    const two = await generateKeyPair('ES256');
    const jwt = signJwt({ kid: 'k1', alg: 'ES256', privateKey: one.privateKey }, { a: 1 }, 'JWT');
    await expect(jwtVerify(jwt, two.publicKey)).rejects.toThrow('signature verification failed');
  });
});
