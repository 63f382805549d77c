import { createHash } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import { revocationHorizon } from '../tokens.js';
import type { AuditFields, AuditLog } from '../../platform/observability/audit.js';
import type { RefreshMetrics } from '../../platform/observability/refresh-metrics.js';
import type { ConsentRepository } from '../consent-store.js';
import type { FamilyFilter, RefreshTokenRepository, RevokedFamily } from './store.js';

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

/**
 * One family revoked by the server or a client (not a bulk revocation): its `family.revoked`
 * audit event and its latchkey_refresh_families_revoked_total label. Whichever request revoked
 * the family records it, so each family revoked is one event and one count.
 */
export function familyRevoked(family: RevokedFamily, reason: string): { audit: { event: 'family.revoked'; fields: AuditFields }; reasonLabel: string } {
  return {
    audit: { event: 'family.revoked', fields: { client_id: family.client_id, sub: family.user_id, grant_id: family.id, reason, revoked_by: REVOKED_BY[reason] ?? 'server' } },
    reasonLabel: reason in REVOKED_BY ? reason : 'admin',
  };
}

/** Who asked for a bulk revocation: the admin API (with which credential) or the CLI (which OS user). */
export interface RevocationActor extends AuditFields {
  revoked_by: string;
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
    // revoked_grants first, then the family: a family being born concurrently is written first
    // and revoked if its grant is in revoked_grants after (startRefreshFamily: why no
    // interleaving of the two leaves it live).
    const added = await deps.revokedGrants.add(grantId, clientId, expiresAt, reason);
    const family = await deps.families.revokeFamily(grantId, reason, deps.clock.now());
    if (added) deps.audit.record('grant.revoked', { client_id: clientId, grant_id: grantId, reason });
    if (family) {
      const revoked = familyRevoked(family, reason);
      deps.metrics.familiesRevoked.inc({ reason: revoked.reasonLabel });
      deps.audit.record(revoked.audit.event, revoked.audit.fields);
    }
  }

  /**
   * One family by an operator (the stolen-refresh-token runbook): it and every access token of
   * its grant, the user's other grants untouched. Audited `family.revoked` with who and why.
   * Undefined when no such family exists; `revoked: false` when it was revoked already.
   */
  async revokeOne(grantId: string, reason: string, actor: RevocationActor): Promise<{ family: RevokedFamily; revoked: boolean } | undefined> {
    const { deps } = this;
    const found = await deps.families.findFamily(grantId);
    if (!found) return undefined;
    const now = deps.clock.now();
    // The grant first (its access tokens), then the family, as revokeGrant does.
    await deps.revokedGrants.add(found.id, found.client_id, revocationHorizon(now), 'admin');
    const family = await deps.families.revokeFamily(found.id, reason, now);
    if (family) {
      deps.metrics.familiesRevoked.inc({ reason: 'admin' });
      deps.audit.record('family.revoked', { ...actor, sub: family.user_id, client_id: family.client_id, grant_id: family.id, of: 'grant', reason, families: 1 });
    }
    return { family: { id: found.id, client_id: found.client_id, user_id: found.user_id }, revoked: family !== undefined };
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
