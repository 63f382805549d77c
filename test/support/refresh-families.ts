import { Registry } from 'prom-client';
import type { Counter } from 'prom-client';
import type { RefreshTokenStore } from '../../src/oauth/refresh-families/rotation.js';
import type { NewRefreshFamily, RefreshFamilyRecord, StoredRefreshToken, Successor } from '../../src/oauth/refresh-families/store.js';
import type { RefreshTokenState } from '../../src/platform/db/schema.js';
import type { Clock } from '../../src/platform/clock.js';
import { refreshMetrics, type RefreshMetrics } from '../../src/platform/observability/refresh-metrics.js';

/** One refresh_tokens row, in memory. */
export interface MemoryRefreshToken {
  tokenHash: Buffer;
  familyId: string;
  generation: number;
  state: RefreshTokenState;
  createdAt: Date;
  expiresAt: Date;
  rotatedAt: Date | null;
  sealed: { ciphertext: string; nonce: string } | null;
}

/**
 * The refresh token families of src/oauth/refresh-families/store.ts in memory, with the same
 * conditions as its SQL: a family is born revoked when its grant already is, `rotate` changes
 * nothing unless the presented token is its live family's active one and the caller's (each
 * call runs to completion without awaiting, so it is atomic as the one UPDATE is).
 */
export class MemoryRefreshFamilies implements RefreshTokenStore {
  readonly families = new Map<string, RefreshFamilyRecord>();
  readonly tokens = new Map<string, MemoryRefreshToken>();
  readonly revokedGrants = new Set<string>();
  /** Every rotate call, successful or not. */
  readonly rotations: Array<{ tokenHash: Buffer; clientId: string; rotated: boolean }> = [];

  async startFamily(f: NewRefreshFamily, tokenHash: Buffer, tokenExpiresAt: Date, now: Date): Promise<{ revoked: boolean }> {
    return this.insertFamily(f, tokenHash, tokenExpiresAt, now, this.revokedGrants.has(f.id));
  }

  /**
   * The insert of startFamily, born revoked or not as its grant was when the statement began
   * (`revoked`): a test can let a revocation land between the statement's snapshot and its
   * commit, as it can on PostgreSQL.
   */
  insertFamily(f: NewRefreshFamily, tokenHash: Buffer, tokenExpiresAt: Date, now: Date, revoked: boolean): { revoked: boolean } {
    this.families.set(f.id, {
      id: f.id, client_id: f.clientId, user_id: f.userId, scope: f.scope, audience: f.audience, sid: f.sid, auth_time: f.authTime,
      amr: f.amr, acr: f.acr, created_at: now, absolute_expires_at: f.absoluteExpiresAt, idle_expires_at: tokenExpiresAt,
      revoked_at: revoked ? now : null, revoked_reason: revoked ? 'grant revoked' : null,
      created_ip: f.ip ?? null, last_rotated_at: null, last_rotated_ip: null,
    });
    this.tokens.set(tokenHash.toString('hex'), {
      tokenHash, familyId: f.id, generation: 1, state: revoked ? 'revoked' : 'active', createdAt: now, expiresAt: tokenExpiresAt, rotatedAt: null, sealed: null,
    });
    return { revoked };
  }

  async revokeIfGrantRevoked(familyId: string, now: Date): Promise<boolean> {
    return this.revokedGrants.has(familyId) && await this.revokeFamily(familyId, 'grant revoked', now) !== undefined;
  }

  async revokeFamily(familyId: string, reason: string, now: Date): Promise<{ id: string; client_id: string; user_id: string } | undefined> {
    const family = this.families.get(familyId);
    if (!family || family.revoked_at !== null) return undefined;
    family.revoked_at = now;
    family.revoked_reason = reason;
    for (const t of this.familyTokens(familyId)) { t.state = 'revoked'; t.sealed = null; }
    return { id: family.id, client_id: family.client_id, user_id: family.user_id };
  }

  async find(tokenHash: Buffer): Promise<StoredRefreshToken | undefined> {
    const t = this.tokens.get(tokenHash.toString('hex'));
    if (!t) return undefined;
    const family = this.families.get(t.familyId)!;
    const successor = this.familyTokens(t.familyId).find((s) => s.generation === t.generation + 1);
    return {
      familyId: t.familyId, generation: t.generation, state: t.state, expiresAt: t.expiresAt, rotatedAt: t.rotatedAt,
      successor: t.sealed ? { ...t.sealed } : null, successorState: successor?.state ?? null, family: { ...family },
    };
  }

  async rotate(tokenHash: Buffer, clientId: string, successor: Successor, now: Date): Promise<{ generation: number; expiresAt: Date } | undefined> {
    const t = this.tokens.get(tokenHash.toString('hex'));
    const family = t && this.families.get(t.familyId);
    const live = t !== undefined && family !== undefined && t.state === 'active' && t.expiresAt > now &&
      family.client_id === clientId && family.revoked_at === null && family.absolute_expires_at > now;
    this.rotations.push({ tokenHash, clientId, rotated: live });
    if (!live) return undefined;
    t.state = 'rotated';
    t.rotatedAt = now;
    t.sealed = successor.sealed;
    const expiresAt = new Date(Math.min(successor.idleExpiresAt.getTime(), family.absolute_expires_at.getTime()));
    this.tokens.set(successor.hash.toString('hex'), {
      tokenHash: successor.hash, familyId: t.familyId, generation: t.generation + 1, state: 'active', createdAt: now, expiresAt, rotatedAt: null, sealed: null,
    });
    family.idle_expires_at = expiresAt;
    const predecessor = this.familyTokens(t.familyId).find((p) => p.generation === t.generation - 1);
    if (predecessor) predecessor.sealed = null;
    return { generation: t.generation + 1, expiresAt };
  }

  /** The tokens of a family, by generation. */
  familyTokens(familyId: string): MemoryRefreshToken[] {
    return [...this.tokens.values()].filter((t) => t.familyId === familyId).sort((a, b) => a.generation - b.generation);
  }

  /**
   * A revokeGrant as services.ts wires it (src/oauth/refresh-families/revocation.ts): the grant
   * into the revoked set first, then its family. `calls` records each call's arguments.
   */
  grantRevoker(clock: Clock): { revokeGrant(grantId: string, clientId: string, reason: string, expiresAt: Date): Promise<void>; calls: Array<[string, string, string, Date]> } {
    const calls: Array<[string, string, string, Date]> = [];
    return {
      calls,
      revokeGrant: async (grantId, clientId, reason, expiresAt) => {
        calls.push([grantId, clientId, reason, expiresAt]);
        this.revokedGrants.add(grantId);
        await this.revokeFamily(grantId, reason, clock.now());
      },
    };
  }
}

/** The refresh metrics on a registry of their own, and how to read a counter's value. */
export function testRefreshMetrics(): RefreshMetrics {
  return refreshMetrics(new Registry());
}

/** The value of a counter (for `labels`, when given); 0 when never incremented. */
export async function counterValue(counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  const match = values.find((v) => Object.keys(labels).length === Object.keys(v.labels).length &&
    Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return match?.value ?? 0;
}
