import type { Clock } from '../clock.js';
import type { AuditEventRepository } from './audit-event-store.js';

/**
 * Deletes audit events older than the retention, in bounded batches (each a short transaction
 * that never holds many locks); returns how many rows went.
 */
export async function enforceAuditRetention(repo: AuditEventRepository, clock: Clock, retentionSeconds: number, batch = 1000): Promise<number> {
  const before = new Date(clock.now().getTime() - retentionSeconds * 1000);
  let total = 0;
  for (;;) {
    const n = await repo.deleteOlderThan(before, batch);
    total += n;
    if (n < batch) return total;
  }
}
