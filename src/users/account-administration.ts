import { z } from 'zod';
import type { Clock } from '../platform/clock.js';
import type { AuditFields, AuditLog } from '../platform/observability/audit.js';
import type { FamilyFilter } from '../oauth/refresh-families/store.js';
import type { SessionRepository, SsoSession } from './session-store.js';
import type { User, UserRepository } from './user-store.js';

/** Login names: what a person types, so printable and unambiguous (CLI and admin API). */
export const USERNAME = z.string().regex(/^[A-Za-z0-9._@+-]{1,64}$/, 'username: 1 to 64 letters, digits or . _ @ + -');
export const EMAIL = z.email('email: not a valid address').max(254);

/** Who acted: the admin API (with which credential) or the CLI (which OS user). */
export interface AccountActor extends AuditFields {
  by: string;
}

export interface AccountAdministrationDeps {
  users: Pick<UserRepository, 'setPasswordHash' | 'setDisabled'>;
  sessions: Pick<SessionRepository, 'endAllOf' | 'endBySid'>;
  /**
   * Tells the apps of ended sessions (Back-Channel Logout): the server's SessionEndNotifier, or
   * the CLI's, which collects them and tells the apps once it has the signing keys.
   */
  sessionsEnded(sessions: readonly SsoSession[], fields: AuditFields): void;
  /** FamilyRevocation.revokeFamilies: every family of the user and its access tokens. */
  revokeFamilies(filter: FamilyFilter, reason: string, actor: AuditFields & { revoked_by: string }): Promise<{ families: number }>;
  audit: AuditLog;
  clock: Clock;
  /** latchkey_admin_account_actions_total, where there is a server registry. */
  counted?(action: string, n?: number): void;
}

/**
 * What an operator does to an account in an incident — a new password (ending the sessions and
 * grants the old one may have opened), ending sessions, disabling — with the same effects and
 * audit events from the admin API and the CLI. Each state change is one statement; the apps of
 * every ended session are told, as at sign-out.
 */
export class AccountAdministration {
  constructor(private readonly deps: AccountAdministrationDeps) {}

  /**
   * The compromised-account step: the new password (hashed by the caller), then — unless the
   * operator keeps them — every SSO session ended (apps told) and every refresh family revoked
   * with its access tokens. Audited `user.password_set` with what was ended.
   */
  async setPassword(user: User, hash: string, options: { endSessions: boolean; revokeTokens: boolean }, actor: AccountActor): Promise<{ sessions_ended: number; families_revoked: number }> {
    const { deps } = this;
    await deps.users.setPasswordHash(user.id, hash, deps.clock.now());
    const ended = options.endSessions ? await this.endAll(user, actor) : [];
    const families = options.revokeTokens
      ? (await deps.revokeFamilies({ userId: user.id }, 'password_set', { ...actor, revoked_by: actor.by })).families
      : 0;
    deps.audit.record('user.password_set', { sub: user.id, ...actor, sessions_ended: ended.length, families_revoked: families, end_sessions: options.endSessions, revoke_tokens: options.revokeTokens });
    deps.counted?.('password_set');
    return { sessions_ended: ended.length, families_revoked: families };
  }

  /**
   * Ends one session of the user (by sid) or all of them; each ended one is audited
   * `session.ended_by_admin` and its apps told. Undefined: no such live session.
   */
  async endSessions(user: User, sid: string | undefined, actor: AccountActor): Promise<SsoSession[] | undefined> {
    if (sid === undefined) return this.endAll(user, actor);
    const { deps } = this;
    const ended = await deps.sessions.endBySid(user.id, sid, deps.clock.now());
    if (!ended) return undefined;
    this.ended([ended], actor);
    return [ended];
  }

  /** Disable (ends every session, apps told) or enable; audited user.disabled / user.enabled. */
  async setDisabled(user: User, disabled: boolean, actor: AccountActor): Promise<{ sessions_ended: number }> {
    const { deps } = this;
    await deps.users.setDisabled(user.id, disabled, deps.clock.now());
    if (!disabled) {
      deps.audit.record('user.enabled', { sub: user.id, ...actor });
      deps.counted?.('enable');
      return { sessions_ended: 0 };
    }
    // A disabled user is signed out everywhere at once, and the apps of each session are told.
    const ended = await deps.sessions.endAllOf(user.id, deps.clock.now());
    deps.audit.record('user.disabled', { sub: user.id, sessions_ended: ended.length, ...actor });
    deps.counted?.('disable');
    if (ended.length > 0) deps.sessionsEnded(ended, actor);
    return { sessions_ended: ended.length };
  }

  private async endAll(user: User, actor: AccountActor): Promise<SsoSession[]> {
    const ended = await this.deps.sessions.endAllOf(user.id, this.deps.clock.now());
    this.ended(ended, actor);
    return ended;
  }

  private ended(sessions: readonly SsoSession[], actor: AccountActor): void {
    for (const s of sessions) this.deps.audit.record('session.ended_by_admin', { sub: s.user_id, sid: s.sid, ...actor });
    if (sessions.length > 0) {
      this.deps.counted?.('end_session', sessions.length);
      this.deps.sessionsEnded(sessions, actor);
    }
  }
}

/** An account as an operator sees it: its claims and state, never its password hash. */
export function accountView(u: User): Record<string, unknown> {
  return {
    sub: u.id, username: u.username, email: u.email, email_verified: u.email_verified, ...u.profile,
    phone_number: u.phone_number, disabled: u.disabled, has_password: u.password_hash !== null,
    created_at: u.created_at.toISOString(), updated_at: u.updated_at.toISOString(),
  };
}

/**
 * A live SSO session as an operator sees it (never its cookie), with the clients that took part
 * in it and will be told when it ends: those registered for back-channel logout (only those are
 * recorded, migration 0016).
 */
export function sessionView(s: SsoSession, clients: readonly string[]): Record<string, unknown> {
  return {
    sid: s.sid, created_at: s.created_at.toISOString(), last_seen_at: s.last_seen_at.toISOString(),
    auth_time: s.auth_time.toISOString(), amr: s.amr, acr: s.acr,
    idle_expires_at: s.idle_expires_at.toISOString(), absolute_expires_at: s.absolute_expires_at.toISOString(),
    backchannel_logout_clients: [...clients],
  };
}
