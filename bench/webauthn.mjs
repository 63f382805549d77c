// A software authenticator with the browser in front of it, for the benchmarks: the minimal part
// of test/support/webauthn.ts in plain JavaScript. ES256 credentials, 'none' attestation,
// discoverable credentials, user presence and user verification always set, a signature counter
// that increases by one per assertion.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/** WebAuthn §6.1 authenticator data flags. */
const UP = 0x01, UV = 0x04, AT = 0x40;

export class SoftwareAuthenticator {
  /** @type {{ id: string, rpId: string, privateKey: import('node:crypto').KeyObject, userHandle: string, counter: number }[]} */
  credentials = [];

  /** @param {{ origin: string, rpId: string }} opts */
  constructor(opts) {
    this.origin = opts.origin;
    this.rpId = opts.rpId;
  }

  /** navigator.credentials.create() and its JSON serialisation (WebAuthn §5.1.3). */
  create(options) {
    const rpId = options.rp.id ?? this.rpId;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const credentialId = randomBytes(16);
    const credential = { id: credentialId.toString('base64url'), rpId, privateKey, userHandle: options.user.id, counter: 0 };
    this.credentials.push(credential);

    // RFC 9053 / COSE_Key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
    const coseKey = cbor(new Map([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x, 'base64url')], [-3, Buffer.from(jwk.y, 'base64url')]]));
    const length = Buffer.alloc(2);
    length.writeUInt16BE(credentialId.length);
    const attested = Buffer.concat([Buffer.alloc(16) /* AAGUID: zero, as with 'none' */, length, credentialId, coseKey]);
    const authData = authenticatorData(rpId, AT | UP | UV, 0, attested);
    const clientDataJSON = this.clientData('webauthn.create', options.challenge);
    const attestationObject = cbor(new Map([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return {
      id: credential.id, rawId: credential.id, type: 'public-key',
      response: { clientDataJSON: clientDataJSON.toString('base64url'), attestationObject: attestationObject.toString('base64url'), transports: ['internal'] },
      clientExtensionResults: {}, authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get() and its JSON serialisation (WebAuthn §5.1.4): the newest matching credential. */
  get(options) {
    const rpId = options.rpId ?? this.rpId;
    const allowed = options.allowCredentials?.length ? new Set(options.allowCredentials.map((c) => c.id)) : undefined;
    const credential = this.credentials.filter((c) => c.rpId === rpId && (!allowed || allowed.has(c.id))).at(-1);
    if (!credential) throw new Error('NotAllowedError: no credential');
    credential.counter += 1;
    const authData = authenticatorData(rpId, UP | UV, credential.counter);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge);
    // §6.3.3 step 11: the signature covers authenticatorData || SHA-256(clientDataJSON); ES256 signatures are DER.
    const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]), credential.privateKey);
    return {
      id: credential.id, rawId: credential.id, type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'), authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'), userHandle: credential.userHandle,
      },
      clientExtensionResults: {}, authenticatorAttachment: 'platform',
    };
  }

  clientData(type, challenge) {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin, crossOrigin: false }));
  }
}

/** §6.1: rpIdHash(32) | flags(1) | signCount(4, big-endian) | attestedCredentialData. */
function authenticatorData(rpId, flags, counter, attested = Buffer.alloc(0)) {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(counter, 1);
  return Buffer.concat([createHash('sha256').update(rpId).digest(), head, attested]);
}

/** A minimal CBOR encoder (RFC 8949 §3): integers, byte and text strings, maps. */
export function cbor(value) {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error('cbor: integers only');
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value);
  }
  if (value instanceof Uint8Array) return Buffer.concat([cborHead(2, value.length), Buffer.from(value)]);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([cborHead(3, bytes.length), bytes]);
  }
  if (value instanceof Map) return Buffer.concat([cborHead(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
  throw new Error(`cbor: unsupported ${typeof value}`);
}

function cborHead(major, n) {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b.writeUInt8(m | 25, 0);
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b.writeUInt8(m | 26, 0);
  b.writeUInt32BE(n, 1);
  return b;
}
