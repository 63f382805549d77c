import { defineSlice, integer, setting } from '../../platform/config/settings.js';

/** /introspect. */
export const introspectionSettings = defineSlice({
  name: 'introspection',
  settings: {
    introspectionRateLimitPerClient: setting('INTROSPECTION_RATE_LIMIT_PER_CLIENT', integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one client may make to /introspect (resource servers introspect per API call), counted once it has authenticated; then 429 with Retry-After.')),
    introspectionRateLimitPerIp: setting('INTROSPECTION_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(60000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /introspect.')),
  },
});
