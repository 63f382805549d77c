import { z } from 'zod';
import { parseDatabaseUrl } from './database-url.js';
import { defineSlice, duration, integer, setting, type SliceValues } from '../config/settings.js';

export const databaseSettings = defineSlice({
  name: 'database',
  settings: {
    databaseUrl: setting('DATABASE_URL', z.string().superRefine((value, ctx) => {
      try { parseDatabaseUrl(value); } catch (err) { ctx.addIssue({ code: 'custom', message: (err as Error).message }); }
    }).optional().describe('postgres:// URL of a real PostgreSQL; several hosts (`postgres://u:p@db-a,db-b/latchkey?target_session_attrs=read-write`) are tried in order and, with read-write, only the primary is used, found again after a failover. Unset: the embedded PGlite store under DATA_DIR.')),
    databaseSchema: setting('DATABASE_SCHEMA', z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier').default('public').describe('Schema holding Latchkey\'s tables on a real PostgreSQL (also namespaces LISTEN/NOTIFY channels).')),
    databasePoolMax: setting('DATABASE_POOL_MAX', integer(1, 200).default(10).describe('Maximum connections in the pool to a real PostgreSQL.')),
    dataDir: setting('DATA_DIR', z.string().min(1).default('./data').describe('Directory of the embedded store (PGlite) and of the generated key-encryption secret.')),
  },
});
export type DatabaseSettings = SliceValues<typeof databaseSettings>;

/** The job deleting expired rows (src/platform/db/cleanup.ts). */
export const cleanupSettings = defineSlice({
  name: 'cleanup',
  settings: {
    cleanupInterval: setting('CLEANUP_INTERVAL', duration(10, 86400).default(600).describe('Period of the job deleting expired codes, refresh tokens and families, denylist entries, assertion jtis, ended or expired SSO sessions and idle sign-in throttle counters.')),
    cleanupBatchSize: setting('CLEANUP_BATCH_SIZE', integer(10, 100_000).default(1000).describe('Rows the cleanup job deletes per statement (FOR UPDATE SKIP LOCKED, so instances share the work).')),
  },
});
export type CleanupSettings = SliceValues<typeof cleanupSettings>;
