import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { SigningAlg } from '../../src/platform/keys/keyring.js';
import { signJwt, verifyJwt } from '../../src/platform/keys/jws.js';

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

  it('keeps each key\'s header per typ and adds an extra header member when asked (headers are encoded once per key)', async () => {
    const one = await generateKeyPair('ES256');
    const two = await generateKeyPair('ES256');
    const sign = (kid: string, privateKey: typeof one.privateKey, typ: string, extra?: Record<string, unknown>) =>
      decodeProtectedHeader(signJwt({ kid, alg: 'ES256', privateKey }, { a: 1 }, typ, extra));
    expect(sign('k1', one.privateKey, 'at+jwt')).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' });
    expect(sign('k1', one.privateKey, 'JWT')).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
    expect(sign('k1', one.privateKey, 'at+jwt')).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' });
    expect(sign('k2', two.privateKey, 'at+jwt')).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k2' });
    expect(sign('k1', one.privateKey, 'JWT', { cty: 'x' })).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1', cty: 'x' });
  });

  it('yields a signature a different key does not verify', async () => {
    const one = await generateKeyPair('ES256');
    const two = await generateKeyPair('ES256');
    const jwt = signJwt({ kid: 'k1', alg: 'ES256', privateKey: one.privateKey }, { a: 1 }, 'JWT');
    await expect(jwtVerify(jwt, two.publicKey)).rejects.toThrow('signature verification failed');
  });
});

describe('compact JWS verification of the server\'s own tokens', () => {
  const setup = async () => {
    const es = await generateKeyPair('ES256');
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const keys = new Map([
      ['es', { kid: 'es', alg: 'ES256' as const, publicKey: es.publicKey }],
      ['ed', { kid: 'ed', alg: 'EdDSA' as const, publicKey: ed.publicKey }],
    ]);
    const keyFor = (kid: string) => keys.get(kid);
    const token = signJwt({ kid: 'es', alg: 'ES256', privateKey: es.privateKey }, { sub: 'svc', n: 1 }, 'at+jwt');
    return { es, ed, keyFor, token };
  };
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

  it('accepts a token it signed, returning header and payload', async () => {
    const { keyFor, token } = await setup();
    expect(verifyJwt(token, keyFor, 'at+jwt')).toEqual({ ok: true, header: { alg: 'ES256', typ: 'at+jwt', kid: 'es' }, payload: { sub: 'svc', n: 1 } });
    expect(verifyJwt(token, keyFor, 'application/at+jwt').ok).toBe(false); // expected typ is written without the prefix
  });

  it('rejects a changed payload, an unknown kid, and an alg other than the key\'s', async () => {
    const { ed, keyFor, token } = await setup();
    const [h, , s] = token.split('.');
    expect(verifyJwt(`${h}.${b64({ sub: 'admin', n: 1 })}.${s}`, keyFor, 'at+jwt')).toEqual({ ok: false, reason: 'invalid_signature' });
    expect(verifyJwt(signJwt({ kid: 'nope', alg: 'ES256', privateKey: (await generateKeyPair('ES256')).privateKey }, {}, 'at+jwt'), keyFor, 'at+jwt')).toEqual({ ok: false, reason: 'unknown_key' });
    // Signed with the Ed25519 key but claiming the ES256 kid: the key decides the algorithm.
    const forged = signJwt({ kid: 'es', alg: 'EdDSA', privateKey: ed.privateKey }, { sub: 'svc' }, 'at+jwt');
    expect(verifyJwt(forged, keyFor, 'at+jwt')).toEqual({ ok: false, reason: 'invalid_signature' });
  });

  it('rejects alg none, a wrong typ, a crit header and malformed input', async () => {
    const { keyFor, token } = await setup();
    const [, p, s] = token.split('.');
    expect(verifyJwt(`${b64({ alg: 'none', typ: 'at+jwt', kid: 'es' })}.${p}.`, keyFor, 'at+jwt')).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyJwt(`${b64({ alg: 'none', typ: 'at+jwt', kid: 'es' })}.${p}.${s}`, keyFor, 'at+jwt')).toEqual({ ok: false, reason: 'invalid_signature' });
    expect(verifyJwt(token, keyFor, 'JWT')).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyJwt(`${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'es', crit: ['x'] })}.${p}.${s}`, keyFor, 'at+jwt')).toEqual({ ok: false, reason: 'malformed' });
    for (const bad of ['', 'a.b', 'a.b.c.d', `${token}!`, `${token.slice(0, 10)}+${token.slice(11)}`, 'e30.e30.e30']) {
      expect(verifyJwt(bad, keyFor, 'at+jwt').ok).toBe(false);
    }
  });
});
