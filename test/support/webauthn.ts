import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

/** WebAuthn §6.1 authenticator data flags. */
const UP = 0x01, UV = 0x04, BE = 0x08, BS = 0x10, AT = 0x40;

export interface SoftwareAuthenticatorOptions {
  /** The origin the "browser" reports in clientDataJSON. */
  origin: string;
  rpId: string;
  /** Sets UV (default true). */
  uv?: boolean;
  /** Sets BE: a multi-device (syncable) credential (default false). */
  backupEligible?: boolean;
  /** Sets BS (default: as backupEligible). */
  backedUp?: boolean;
  /** An authenticator without a signature counter: always 0 (default: 1, 2, 3… per assertion). */
  zeroCounter?: boolean;
}

/** What one ceremony may override, to build a response a real authenticator or browser would not. */
export interface CeremonyOverrides {
  origin?: string;
  uv?: boolean;
  backedUp?: boolean;
  /** The signature counter this assertion reports. */
  counter?: number;
  /** Which of its credentials to assert with (default: the first allowed one, or the newest). */
  credentialId?: string;
}

interface Credential {
  id: string;
  rpId: string;
  privateKey: KeyObject;
  userHandle: string;
  counter: number;
}

/**
 * A software authenticator with the browser in front of it: ES256 credentials, 'none'
 * attestation, discoverable credentials. It signs whatever it is told to, so tests can build
 * replayed, regressed or cross-origin responses.
 */
export class SoftwareAuthenticator {
  readonly credentials: Credential[] = [];

  constructor(private readonly opts: SoftwareAuthenticatorOptions) {}

  /** navigator.credentials.create() and its JSON serialisation (WebAuthn §5.1.3). */
  create(options: PublicKeyCredentialCreationOptionsJSON, overrides: CeremonyOverrides = {}): RegistrationResponseJSON {
    const rpId = options.rp.id ?? this.opts.rpId;
    // §6.3.2 step 3: an authenticator holding an excluded credential refuses.
    if (options.excludeCredentials?.some((c) => this.credentials.some((k) => k.id === c.id))) throw new Error('InvalidStateError');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const credentialId = randomBytes(16);
    const credential: Credential = { id: credentialId.toString('base64url'), rpId, privateKey, userHandle: options.user.id, counter: 0 };
    this.credentials.push(credential);

    const coseKey = cbor(new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, b64u(jwk.x!)], [-3, b64u(jwk.y!)]]));
    const length = Buffer.alloc(2);
    length.writeUInt16BE(credentialId.length);
    const attested = Buffer.concat([Buffer.alloc(16) /* AAGUID: zero, as with 'none' */, length, credentialId, coseKey]);
    const authData = this.authData(rpId, AT | this.flags(overrides), 0, attested);
    const clientDataJSON = this.clientData('webauthn.create', options.challenge, overrides);
    const attestationObject = cbor(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        attestationObject: attestationObject.toString('base64url'),
        transports: ['internal', 'hybrid'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get() and its JSON serialisation (WebAuthn §5.1.4). */
  get(options: PublicKeyCredentialRequestOptionsJSON, overrides: CeremonyOverrides = {}): AuthenticationResponseJSON {
    const rpId = options.rpId ?? this.opts.rpId;
    const allowed = options.allowCredentials?.length ? new Set(options.allowCredentials.map((c) => c.id)) : undefined;
    const candidates = this.credentials.filter((c) => c.rpId === rpId && (!allowed || allowed.has(c.id)));
    const credential = overrides.credentialId
      ? this.credentials.find((c) => c.id === overrides.credentialId)
      : (allowed ? candidates[0] : candidates.at(-1));
    if (!credential) throw new Error('NotAllowedError: no credential');
    credential.counter = overrides.counter ?? (this.opts.zeroCounter ? 0 : credential.counter + 1);

    const authData = this.authData(rpId, this.flags(overrides), credential.counter);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, overrides);
    // §6.3.3 step 11: the signature covers authenticatorData || SHA-256(clientDataJSON); ES256 signatures are DER.
    const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]), credential.privateKey);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  private flags(o: CeremonyOverrides): number {
    const be = this.opts.backupEligible ?? false;
    return UP | ((o.uv ?? this.opts.uv ?? true) ? UV : 0) | (be ? BE : 0) | ((o.backedUp ?? this.opts.backedUp ?? be) ? BS : 0);
  }

  /** §6.1: rpIdHash(32) | flags(1) | signCount(4, big-endian) | attestedCredentialData. */
  private authData(rpId: string, flags: number, counter: number, attested: Buffer = Buffer.alloc(0)): Buffer {
    const head = Buffer.alloc(5);
    head.writeUInt8(flags, 0);
    head.writeUInt32BE(counter, 1);
    return Buffer.concat([createHash('sha256').update(rpId).digest(), head, attested]);
  }

  private clientData(type: string, challenge: string, o: CeremonyOverrides): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: o.origin ?? this.opts.origin, crossOrigin: false }));
  }
}

function b64u(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

/** A minimal CBOR encoder (RFC 8949 §3): integers, byte and text strings, maps. */
export function cbor(value: unknown): Buffer {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error('cbor: integers only');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Map) {
    return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
  }
  throw new Error(`cbor: unsupported ${typeof value}`);
}

function head(major: number, n: number): Buffer {
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
