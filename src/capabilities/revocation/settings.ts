import { defineSlice, integer, setting } from '../../platform/config/settings.js';

/** /revoke. */
export const revocationSettings = defineSlice({
  name: 'revocation',
  settings: {
    revocationRateLimitPerClient: setting('REVOCATION_RATE_LIMIT_PER_CLIENT', integer(1, 10_000_000).default(600).describe('Requests per RATE_LIMIT_WINDOW one client may make to /revoke, counted once it has authenticated.')),
    revocationRateLimitPerIp: setting('REVOCATION_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /revoke.')),
  },
});
