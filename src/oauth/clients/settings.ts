import { z } from 'zod';
import { defineSlice, duration, integer, setting, type SliceValues } from '../../platform/config/settings.js';

/** Clients: the start-up file, the in-memory cache, and secret rotation. */
export const clientSettings = defineSlice({
  name: 'clients',
  settings: {
    clientsFile: setting('CLIENTS_FILE', z.string().min(1).optional().describe('Path of a JSON or YAML file of clients upserted at start-up (secrets from environment variables named by client_secret_env).')),
    clientCacheSize: setting('CLIENT_CACHE_SIZE', integer(1, 1_000_000).default(10000).describe('Most clients held in the in-memory client cache (least recently used dropped first).')),
    clientCacheTtl: setting('CLIENT_CACHE_TTL', duration(1, 86400).default(300).describe('Longest a cached client is used before it is re-read, even without a change notification.')),
    clientSecretRotationOverlap: setting('CLIENT_SECRET_ROTATION_OVERLAP', duration(0, 90 * 86400).default(86400).describe('How long the previous client secret keeps working after a rotation (default for rotate-secret).')),
  },
});
export type ClientSettings = SliceValues<typeof clientSettings>;
