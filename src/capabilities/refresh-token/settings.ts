import { defineSlice, duration, setting } from '../../platform/config/settings.js';

/** Refresh tokens: idle and absolute lifetimes (shorter for public clients) and the rotation grace period. */
export const refreshTokenSettings = defineSlice({
  name: 'refresh-token',
  settings: {
    refreshTokenIdleTtl: setting('REFRESH_TOKEN_IDLE_TTL', duration(60, 400 * 86400).default(14 * 86400).describe('Refresh token idle lifetime (reset by each rotation).')),
    refreshTokenAbsoluteTtl: setting('REFRESH_TOKEN_ABSOLUTE_TTL', duration(60, 400 * 86400).default(90 * 86400).describe('Refresh token family absolute lifetime (never extended).')),
    // RFC 9700 §4.14.2: a public client's refresh token is a bearer credential nothing else binds, so it lives shorter.
    refreshTokenPublicIdleTtl: setting('REFRESH_TOKEN_PUBLIC_IDLE_TTL', duration(60, 400 * 86400).default(7 * 86400).describe('Refresh token idle lifetime for public clients (token_endpoint_auth_method none).')),
    refreshTokenPublicAbsoluteTtl: setting('REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL', duration(60, 400 * 86400).default(30 * 86400).describe('Refresh token family absolute lifetime for public clients.')),
    refreshTokenGracePeriod: setting('REFRESH_TOKEN_GRACE_PERIOD', duration(0, 300).default(30).describe('Time a rotated refresh token presented again still returns its one successor (concurrent tabs, lost responses) instead of revoking the family; 0 disables.')),
  },
  check: (c) => [
    ...(c.refreshTokenIdleTtl > c.refreshTokenAbsoluteTtl ? ['REFRESH_TOKEN_IDLE_TTL: must not exceed REFRESH_TOKEN_ABSOLUTE_TTL'] : []),
    ...(c.refreshTokenPublicIdleTtl > c.refreshTokenPublicAbsoluteTtl ? ['REFRESH_TOKEN_PUBLIC_IDLE_TTL: must not exceed REFRESH_TOKEN_PUBLIC_ABSOLUTE_TTL'] : []),
  ],
});
