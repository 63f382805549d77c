import { KeyObject, sign as nodeSign, constants } from 'node:crypto';
import type { SigningAlg, SigningKey } from './keyring.js';

/**
 * Compact JWS signing (RFC 7515 §7.1) with node:crypto's synchronous signer. It produces the
 * same tokens jose's SignJWT does, about three times faster for ES256 on one core (jose goes
 * through WebCrypto's asynchronous sign), which is most of the token endpoint's cost.
 * Verification stays with jose.
 */
const NODE_ALG: Record<SigningAlg, { digest: string | null; options: Partial<Parameters<typeof nodeSign>[2] & object> }> = {
  ES256: { digest: 'sha256', options: { dsaEncoding: 'ieee-p1363' } }, // RFC 7518 §3.4: R || S, not DER
  EdDSA: { digest: null, options: {} },
  RS256: { digest: 'sha256', options: { padding: constants.RSA_PKCS1_PADDING } },
  PS256: { digest: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } }, // RFC 7518 §3.5: salt = hash size
};

const keyObjects = new WeakMap<object, KeyObject>();

function asKeyObject(key: SigningKey['privateKey']): KeyObject {
  if (key instanceof KeyObject) return key;
  let ko = keyObjects.get(key);
  if (!ko) {
    ko = KeyObject.from(key as Parameters<typeof KeyObject.from>[0]);
    keyObjects.set(key, ko);
  }
  return ko;
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** Signs `payload` as a compact JWS with header {alg, typ, kid} (plus `extraHeader`). */
export function signJwt(key: SigningKey, payload: Record<string, unknown>, typ: string, extraHeader: Record<string, unknown> = {}): string {
  const header = b64url(JSON.stringify({ alg: key.alg, typ, kid: key.kid, ...extraHeader }));
  const input = `${header}.${b64url(JSON.stringify(payload))}`;
  const { digest, options } = NODE_ALG[key.alg];
  const signature = nodeSign(digest, Buffer.from(input), { key: asKeyObject(key.privateKey), ...options } as Parameters<typeof nodeSign>[2]);
  return `${input}.${signature.toString('base64url')}`;
}
