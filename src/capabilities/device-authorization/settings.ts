import { defineSlice, duration, integer, setting } from '../../platform/config/settings.js';

/** The device authorization grant (RFC 8628): lifetimes, polling interval, limits. */
export const deviceAuthorizationSettings = defineSlice({
  name: 'device-authorization',
  settings: {
    deviceCodeTtl: setting('DEVICE_CODE_TTL', duration(5, 3600).default(600).describe('Lifetime of a device code and its user code (RFC 8628 §3.2 expires_in): the time a person has to enter the code and approve.')),
    deviceCodeInterval: setting('DEVICE_CODE_INTERVAL', integer(1, 60).default(5).describe('Seconds a device must wait between polls of /token (RFC 8628 §3.2 interval); each poll sooner answers slow_down and adds 5 seconds for that device (§3.5).')),
    deviceUserCodeAttempts: setting('DEVICE_USER_CODE_ATTEMPTS', integer(1, 1000).default(10).describe('User codes (right or wrong) one address, one signed-in session or one account may enter in 15 minutes on /device and /device/decision before it must wait 15 minutes (RFC 8628 §5.1: brute force of user codes). See Device flow for the guessing bound this gives.')),
    deviceAuthorizationRateLimitPerIp: setting('DEVICE_AUTHORIZATION_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(600).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /device_authorization.')),
  },
});
