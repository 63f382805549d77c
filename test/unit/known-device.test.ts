import { describe, expect, it } from 'vitest';
import { KnownDeviceCookies } from '../../src/users/known-device.js';

const SECRET = 'a-key-encryption-secret-0123456789abcdef';
const NOW = new Date('2030-01-01T00:00:00Z');
const DAY = 86400;

describe('known-device cookie of the sign-in throttle', () => {
  const devices = new KnownDeviceCookies(SECRET, 90 * DAY);

  it('names the account and the device it was issued for, until it expires', () => {
    const value = devices.issue('0b9a1f4e-user', NOW, 'AAAAAAAAAAAAAAAAAAAAAA');
    expect(devices.verify(value, NOW)).toEqual({ userId: '0b9a1f4e-user', deviceId: 'AAAAAAAAAAAAAAAAAAAAAA' });
    expect(devices.verify(value, new Date(NOW.getTime() + (90 * DAY - 1) * 1000))).toBeDefined();
    expect(devices.verify(value, new Date(NOW.getTime() + 90 * DAY * 1000))).toBeUndefined();
  });

  it('gives each new browser a random device id', () => {
    const a = devices.verify(devices.issue('u', NOW), NOW)!;
    const b = devices.verify(devices.issue('u', NOW), NOW)!;
    expect(a.deviceId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.deviceId).not.toBe(b.deviceId);
  });

  it('trusts nothing it did not sign: another secret, another account or expiry, a changed MAC, garbage', () => {
    const value = devices.issue('alice', NOW);
    const [user, device, expiry, mac] = value.split('.');
    expect(new KnownDeviceCookies('another-secret-0123456789abcdef0123456789', 90 * DAY).verify(value, NOW)).toBeUndefined();
    expect(devices.verify([Buffer.from('mallory').toString('base64url'), device, expiry, mac].join('.'), NOW)).toBeUndefined();
    expect(devices.verify([user, device, String(Number(expiry) + DAY), mac].join('.'), NOW)).toBeUndefined();
    expect(devices.verify([user, device, expiry, `${mac!.slice(0, -1)}${mac!.endsWith('A') ? 'B' : 'A'}`].join('.'), NOW)).toBeUndefined();
    for (const bad of [undefined, '', 'x', `${value}.x`, value.replace(/\./g, '')]) expect(devices.verify(bad, NOW)).toBeUndefined();
  });
});
