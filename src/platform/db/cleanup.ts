import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from './schema.js';

/** What one cleanup step removes: a name (the metric label) and its bounded statement. */
export interface CleanupStep {
  name: string;
  /** Deletes (or erases) at most `limit` rows that are past their use at `now`; locked rows are skipped. */
  batch(now: Date, limit: number): RawBuilder<unknown>;
}

export interface CleanupOptions {
  batchSize: number;
  /** Most batches per step per run, so one run ends even while rows keep expiring. */
  maxBatches?: number;
  /** Redeemed codes are kept this long after expiry, so a late replay still revokes (seconds). */
  codeRetention: number;
  /** Revoked families are kept this long (their access tokens' longest life), then deleted (seconds). */
  revokedFamilyRetention: number;
  /** The refresh grace window (seconds): kept successors are erased once it has passed. */
  gracePeriod: number;
  /** The sign-in throttle's counting window (seconds): a counter idle longer, and not blocking, starts again from zero anyway. */
  loginThrottleWindow: number;
}

/**
 * The cleanup job's statements. Each batch is one statement choosing its rows with
 * `FOR UPDATE SKIP LOCKED`, so several instances running the job at once share the rows
 * instead of waiting on each other, and a batch never blocks a token request for long.
 * Refresh tokens go with their family (ON DELETE CASCADE) when the family has expired (idle or
 * absolute) or was revoked long enough ago: a rotated token is kept while its family lives, as
 * presenting it is reuse.
 */
export class Cleanup {
  private readonly steps: CleanupStep[];

  constructor(private readonly db: Kysely<Database>, private readonly options: CleanupOptions) {
    const ago = (now: Date, seconds: number) => new Date(now.getTime() - seconds * 1000);
    this.steps = [
      {
        name: 'authorization_codes',
        batch: (now, n) => sql`delete from authorization_codes where code_hash in (
          select code_hash from authorization_codes where expires_at < ${ago(now, options.codeRetention)} limit ${n} for update skip locked)`,
      },
      {
        name: 'authorization_requests',
        batch: (now, n) => sql`delete from authorization_requests where id_hash in (
          select id_hash from authorization_requests where expires_at < ${now} limit ${n} for update skip locked)`,
      },
      {
        name: 'revoked_access_tokens',
        batch: (now, n) => sql`delete from revoked_access_tokens where jti in (
          select jti from revoked_access_tokens where expires_at < ${now} limit ${n} for update skip locked)`,
      },
      {
        name: 'revoked_grants',
        batch: (now, n) => sql`delete from revoked_grants where grant_id in (
          select grant_id from revoked_grants where expires_at < ${now} limit ${n} for update skip locked)`,
      },
      {
        name: 'client_assertion_jtis',
        batch: (now, n) => sql`delete from client_assertion_jtis where (client_id, jti_hash) in (
          select client_id, jti_hash from client_assertion_jtis where expires_at < ${now} limit ${n} for update skip locked)`,
      },
      {
        name: 'refresh_families',
        batch: (now, n) => sql`delete from refresh_families where id in (
          select id from refresh_families
          where idle_expires_at < ${now} or absolute_expires_at < ${now} or revoked_at < ${ago(now, options.revokedFamilyRetention)}
          limit ${n} for update skip locked)`,
      },
      {
        // A session ended or expired can never be used again (its session_clients rows go with it).
        name: 'sessions',
        batch: (now, n) => sql`delete from sessions where id_hash in (
          select id_hash from sessions where ended_at is not null or idle_expires_at < ${now} or absolute_expires_at < ${now}
          limit ${n} for update skip locked)`,
      },
      {
        name: 'login_throttle',
        batch: (now, n) => sql`delete from login_throttle where key in (
          select key from login_throttle
          where last_failure_at < ${ago(now, options.loginThrottleWindow)} and (blocked_until is null or blocked_until < ${now})
          limit ${n} for update skip locked)`,
      },
      {
        // Not a deletion: the successor kept for the grace window is erased once the window has passed.
        name: 'refresh_successors',
        batch: (now, n) => sql`update refresh_tokens set successor_ciphertext = null, successor_nonce = null where token_hash in (
          select token_hash from refresh_tokens where successor_ciphertext is not null and rotated_at < ${ago(now, options.gracePeriod)}
          limit ${n} for update skip locked)`,
      },
    ];
  }

  /** Adds a step (a capability's own table), run after the others; its name must be new. */
  add(step: CleanupStep): void {
    if (this.steps.some((s) => s.name === step.name)) throw new Error(`cleanup step ${step.name} added twice`);
    this.steps.push(step);
  }

  /** One run: every step in batches until it finds fewer rows than a batch. Returns the rows removed per step. */
  async run(now: Date): Promise<Record<string, number>> {
    const removed: Record<string, number> = {};
    const limit = this.options.batchSize;
    for (const step of this.steps) {
      let total = 0;
      for (let i = 0; i < (this.options.maxBatches ?? 100); i++) {
        const result = await step.batch(now, limit).execute(this.db);
        const n = Number(result.numAffectedRows ?? 0n);
        total += n;
        if (n < limit) break;
      }
      removed[step.name] = total;
    }
    return removed;
  }
}
