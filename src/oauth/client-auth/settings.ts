import { defineSlice, integer, setting, type SliceValues } from '../../platform/config/settings.js';

/** The key sets fetched from clients' jwks_uri (src/oauth/client-auth/client-keys.ts): how large, how many, how much is kept. */
export const clientKeySettings = defineSlice({
  name: 'client-keys',
  settings: {
    jwksUriMaxBytes: setting('JWKS_URI_MAX_BYTES', integer(1024, 4 * 1024 * 1024).default(128 * 1024).describe('Largest key set read from a client\'s jwks_uri, in bytes; the fetch is aborted as soon as more arrive (a few dozen keys with certificate chains fit in the default).')),
    jwksUriMaxKeys: setting('JWKS_URI_MAX_KEYS', integer(1, 1000).default(50).describe('Most keys a client\'s jwks_uri set may hold; a set with more is refused.')),
    jwksUriCacheSize: setting('JWKS_URI_CACHE_SIZE', integer(1, 1_000_000).default(1000).describe('Most jwks_uri key sets held in memory (least recently used dropped first).')),
    jwksUriCacheBytes: setting('JWKS_URI_CACHE_BYTES', integer(64 * 1024, 1024 * 1024 * 1024).default(16 * 1024 * 1024).describe('Most bytes of jwks_uri key sets (as received) held in memory, whatever their number; least recently used dropped first.')),
  },
  check: (c) => (c.jwksUriCacheBytes < c.jwksUriMaxBytes
    ? [`JWKS_URI_CACHE_BYTES: must be at least JWKS_URI_MAX_BYTES (${c.jwksUriMaxBytes}), or the largest accepted set would not fit`]
    : []),
});
export type ClientKeySettings = SliceValues<typeof clientKeySettings>;
