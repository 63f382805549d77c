import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { derivedKeys, type KeyEncryptionSecrets } from '../platform/keys/encryption.js';

/**
 * The known-device cookie of the sign-in throttle (OWASP "Slow Down Online Guessing Attacks
 * with Device Cookies"): set on a successful sign-in, it tells a later attempt from the same
 * browser that this account signed in here before, so the attempt counts against an allowance of
 * its own instead of the account's, which strangers' failures may have used up.
 *
 * Value: `base64url(user id).device id.expiry (unix seconds).HMAC-SHA256` of the first three,
 * under a key derived with HKDF (RFC 5869) from the key-encryption secret, the same on every
 * instance. Nothing is stored: a value is trusted only if its MAC verifies and it has not expired.
 */
const HKDF_SALT = 'latchkey/known-device/v1';
const HKDF_INFO = 'HMAC-SHA256 known-device cookie';
const FORMAT = /^([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export interface KnownDevice {
  userId: string;
  /** Random, 128 bits: the browser's own throttle counter for this account. */
  deviceId: string;
}

export class KnownDeviceCookies {
  /** Current secret's key first (the one that signs), then the previous secret's while it is changed. */
  private readonly keys: Buffer[];

  constructor(secret: string | KeyEncryptionSecrets, readonly ttlSeconds: number) {
    this.keys = derivedKeys(secret, { salt: HKDF_SALT, info: HKDF_INFO });
  }

  /** A cookie value for `userId`, valid `ttlSeconds` from `now`; keeps `deviceId` when the browser had one. */
  issue(userId: string, now: Date, deviceId = randomBytes(16).toString('base64url')): string {
    const payload = `${Buffer.from(userId, 'utf8').toString('base64url')}.${deviceId}.${Math.floor(now.getTime() / 1000) + this.ttlSeconds}`;
    return `${payload}.${this.mac(payload)}`;
  }

  /** The device a cookie value names, if it is one this server issued and it has not expired. */
  verify(value: string | undefined, now: Date): KnownDevice | undefined {
    const m = value ? FORMAT.exec(value) : null;
    if (!m) return undefined;
    const [, user, deviceId, expiry, mac] = m;
    const presented = Buffer.from(mac!, 'utf8');
    const verified = this.keys.some((key) => timingSafeEqual(Buffer.from(this.mac(`${user}.${deviceId}.${expiry}`, key), 'utf8'), presented));
    if (!verified) return undefined;
    if (Number(expiry) * 1000 <= now.getTime()) return undefined;
    return { userId: Buffer.from(user!, 'base64url').toString('utf8'), deviceId: deviceId! };
  }

  private mac(payload: string, key: Buffer = this.keys[0]!): string {
    return createHmac('sha256', key).update(payload).digest('base64url');
  }
}
