import type { AuditFields, AuditLog } from '../observability/audit.js';
import type { ReEncryptionCount, SealedTable } from './encryption.js';
import type { SigningAlg } from './keyring.js';
import type { AppliedTransition, KeyManager } from './manager.js';
import type { SigningKeyRow } from './signing-key-store.js';

/**
 * What an operator does to the signing keys and to the secret they are sealed under: the one
 * service behind both `latchkey keys …` and the admin API's /admin/keys routes. Every change goes
 * through the key manager (advisory lock, re-read rows, NOTIFY so every instance reloads at
 * once) and is audited with who made it (`actor`).
 */
export class KeyAdministration {
  private readonly sealed: SealedTable[];

  constructor(readonly manager: KeyManager, private readonly audit: AuditLog) {
    this.sealed = [manager];
  }

  /** Another table of values sealed under KEY_ENCRYPTION_SECRET, re-encrypted by reEncrypt (TOTP secrets). */
  addSealedTable(table: SealedTable): void {
    if (this.sealed.some((t) => t.table === table.table)) throw new Error(`sealed table ${table.table} added twice`);
    this.sealed.push(table);
  }

  /** Every signing key as stored (removed and revoked included), oldest first. */
  list(): Promise<SigningKeyRow[]> {
    return this.manager.listStored();
  }

  rotate(alg: SigningAlg | undefined, actor: AuditFields): Promise<AppliedTransition[]> {
    return this.manager.rotate(alg, actor);
  }

  revoke(kid: string, reason: string | null, actor: AuditFields): Promise<AppliedTransition[]> {
    return this.manager.revoke(kid, reason, actor);
  }

  reactivate(kid: string, actor: AuditFields): Promise<AppliedTransition[]> {
    return this.manager.reactivate(kid, actor);
  }

  /**
   * Re-seals every stored secret under the current KEY_ENCRYPTION_SECRET, one transaction per
   * table; afterwards KEY_ENCRYPTION_SECRET_PREVIOUS can be dropped. A table that does not
   * decrypt (a value under neither secret) stops the run with that table unchanged; tables done
   * before it stay done (running it again is harmless).
   */
  async reEncrypt(actor: AuditFields): Promise<ReEncryptionCount[]> {
    const counts: ReEncryptionCount[] = [];
    for (const table of this.sealed) counts.push(await table.reEncrypt());
    this.audit.record('key.re_encrypted', {
      ...actor,
      tables: Object.fromEntries(counts.map((c) => [c.table, { re_encrypted: c.reEncrypted, from_previous: c.fromPrevious }])),
      re_encrypted: counts.reduce((n, c) => n + c.reEncrypted, 0),
      from_previous: counts.reduce((n, c) => n + c.fromPrevious, 0),
    });
    return counts;
  }
}

/** A signing key as `keys list --json` and GET /admin/keys describe it: its state and history, never key material. */
export function describeSigningKey(r: SigningKeyRow): Record<string, unknown> {
  const at = (d: Date | null) => d?.toISOString() ?? null;
  return {
    kid: r.kid, alg: r.alg, state: r.state, created_at: at(r.created_at), activated_at: at(r.activated_at),
    retired_at: at(r.retired_at), removed_at: at(r.removed_at), revoked_at: at(r.revoked_at), revoked_reason: r.revoked_reason,
  };
}

/** An applied transition as the admin API and `keys … --json` report it. */
export function describeTransition(t: AppliedTransition): Record<string, unknown> {
  switch (t.kind) {
    case 'create': return { action: 'created', kid: t.kid, alg: t.alg, state: t.state };
    case 'retire': return { action: 'retired', kid: t.kid, alg: t.alg };
    case 'activate': return { action: 'activated', kid: t.kid, alg: t.alg, trigger: t.trigger, early: t.early };
    case 'reactivate': return { action: 'reactivated', kid: t.kid, alg: t.alg };
    case 'remove': return { action: 'removed', kid: t.kid, alg: t.alg, previous_state: t.from };
    case 'revoke': return { action: 'revoked', kid: t.kid, alg: t.alg, previous_state: t.from };
  }
}
