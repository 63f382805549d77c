import { defineSlice, integer, setting } from '../../platform/config/settings.js';

/** /userinfo. */
export const userinfoSettings = defineSlice({
  name: 'userinfo',
  settings: {
    userinfoRateLimitPerIp: setting('USERINFO_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /userinfo.')),
  },
});
