import { createHash } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import { revocationHorizon } from '../tokens.js';
import type { AuditFields, AuditLog } from '../../platform/observability/audit.js';
import type { RefreshMetrics } from '../../platform/observability/refresh-metrics.js';
import type { ConsentRepository } from '../consent-store.js';
import type { FamilyFilter, RefreshTokenRepository } from './store.js';

export interface FamilyRevocationDeps {
  families: RefreshTokenRepository;
  consents: Pick<ConsentRepository, 'revoke'>;
  /** The revoked-grants set (src/oauth/revocation-state.ts RevokedSet): durable, then NOTIFY to every instance. */
  revokedGrants: {
    /** True when the id was not in the set yet. */
    add(id: string, clientId: string, expiresAt: Date, reason: string): Promise<boolean>;
    addWritten(ids: readonly string[], expiresAt: Date): Promise<void>;
  };
  audit: AuditLog;
  metrics: RefreshMetrics;
  clock: Clock;
}

/** Who revoked, by the reason the server itself gives (the server's own detections and RFC 7009 clients). */
const REVOKED_BY: Record<string, string> = {
  refresh_token_reused: 'reuse_detection',
  authorization_code_replayed: 'code_replay_detection',
  revoked_by_client: 'client',
};

/** Who asked for a bulk revocation: the admin API (with which credential) or the CLI (which OS user). */
export interface RevocationActor extends AuditFields {
  revoked_by: string;
}

/** A short, stable fingerprint of an admin credential for the audit trail (never the credential). */
export function credentialFingerprint(credential: string): string {
  return createHash('sha256').update(credential).digest('hex').slice(0, 12);
}

/**
 * Revoking refresh token families, and with them every access token of their grant: the
 * family rows (and all their tokens) in one statement, then the grant ids in the revoked-grants
 * set, which introspection and userinfo consult for each access token's `gid`, until every
 * access token that can have been issued from them has expired. One rule, used by reuse
 * detection, code replay, /revoke, the admin API and the CLI.
 */
export class FamilyRevocation {
  constructor(private readonly deps: FamilyRevocationDeps) {}

  /**
   * One grant: its family (if a refresh token was issued from it) and its access tokens.
   * `grant.revoked` is recorded once, by the call that added the grant to the set: N requests
   * replaying one code at once each call this, and the grant was revoked once.
   */
  async revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void> {
    const { deps } = this;
    // revoked_grants first, then the family: a family being started concurrently writes itself
    // first and reads revoked_grants after (startRefreshFamily), so one of the two sees the other.
    const added = await deps.revokedGrants.add(grantId, clientId, expiresAt, reason);
    const family = await deps.families.revokeFamily(grantId, reason, deps.clock.now());
    if (added) deps.audit.record('grant.revoked', { client_id: clientId, grant_id: grantId, reason });
    if (family) {
      deps.metrics.familiesRevoked.inc({ reason: reason in REVOKED_BY ? reason : 'admin' });
      deps.audit.record('family.revoked', { client_id: family.client_id, sub: family.user_id, grant_id: family.id, reason, revoked_by: REVOKED_BY[reason] ?? 'server' });
    }
  }

  /**
   * Every live family of a user, of a client (the compromised-client runbook), or of a
   * user+client pair — the last is consent withdrawn, so the stored consent goes too. Codes
   * not yet redeemed are ended as well. Audited once, with who asked and why.
   */
  async revokeFamilies(filter: FamilyFilter, reason: string, actor: RevocationActor): Promise<{ families: number; consentDeleted?: boolean }> {
    const { deps } = this;
    const now = deps.clock.now();
    await deps.families.expirePendingCodes(filter, now);
    // Families and their grants in one statement; then this instance's set, and one NOTIFY.
    const expiresAt = revocationHorizon(now);
    const revoked = await deps.families.revokeFamilies(filter, reason, now, { reason: 'admin', expiresAt });
    await deps.revokedGrants.addWritten(revoked.map((f) => f.id), expiresAt);
    const pair = filter.userId !== undefined && filter.clientId !== undefined;
    const consentDeleted = pair ? await deps.consents.revoke(filter.userId!, filter.clientId!) : undefined;
    if (revoked.length > 0) deps.metrics.familiesRevoked.inc({ reason: 'admin' }, revoked.length);
    deps.audit.record('family.revoked', {
      ...actor,
      ...(filter.userId !== undefined ? { sub: filter.userId } : {}),
      ...(filter.clientId !== undefined ? { client_id: filter.clientId } : {}),
      of: pair ? 'user_client' : filter.userId !== undefined ? 'user' : 'client',
      reason,
      families: revoked.length,
      // The ids, for finding the grants' tokens in the trail; a huge revocation lists the first 100.
      grant_ids: revoked.slice(0, 100).map((f) => f.id),
      ...(consentDeleted !== undefined ? { consent_deleted: consentDeleted } : {}),
    });
    return { families: revoked.length, ...(consentDeleted !== undefined ? { consentDeleted } : {}) };
  }
}
