import { Counter, type Registry } from 'prom-client';

/**
 * Refresh token families and the cleanup job. Labels are bounded: outcome is issued, rotated
 * or grace; reason one of FAMILY_REVOCATION_REASONS; table one of the cleaned tables.
 */
export interface RefreshMetrics {
  refreshTokens: Counter<'outcome'>;
  reuseDetected: Counter;
  familiesRevoked: Counter<'reason'>;
  cleanupDeleted: Counter<'table'>;
}

/** Why families are revoked, as the metric labels them (an administrator's free-text reason is `admin`). */
export const FAMILY_REVOCATION_REASONS = ['refresh_token_reused', 'revoked_by_client', 'authorization_code_replayed', 'admin'] as const;

const cache = new WeakMap<Registry, RefreshMetrics>();

export function refreshMetrics(registry: Registry): RefreshMetrics {
  let metrics = cache.get(registry);
  if (metrics) return metrics;
  metrics = {
    refreshTokens: new Counter({
      name: 'latchkey_refresh_tokens_total',
      help: 'Refresh tokens returned, by outcome: issued (a new family), rotated (a new generation), grace (the same successor again within the grace window).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    reuseDetected: new Counter({
      name: 'latchkey_refresh_reuse_detected_total',
      help: 'Rotated refresh tokens presented after their grace window: each revokes its family (several at once revoke it once).',
      registers: [registry],
    }),
    familiesRevoked: new Counter({
      name: 'latchkey_refresh_families_revoked_total',
      help: 'Refresh token families revoked, by reason (refresh_token_reused, revoked_by_client, authorization_code_replayed, admin).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    cleanupDeleted: new Counter({
      name: 'latchkey_cleanup_deleted_rows_total',
      help: 'Expired rows deleted by the cleanup job, by table.',
      labelNames: ['table'],
      registers: [registry],
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}
