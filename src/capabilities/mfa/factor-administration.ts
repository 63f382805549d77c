import type { Kysely } from 'kysely';
import type { Clock } from '../../platform/clock.js';
import type { Database } from '../../platform/db/schema.js';
import type { AuditLog } from '../../platform/observability/audit.js';

/** Who acted, for the audit trail: `by: cli:<OS user>`, or the admin API's request fields. */
export type Actor = Record<string, string | undefined>;

/** An account's second factors as an operator sees them (never a secret, hash or public key). */
export interface FactorStatus {
  passkeys: { id: string; name: string; created_at: Date; last_used_at: Date | null }[];
  /** A confirmed TOTP factor; a pending secret (never confirmed by a code) is no factor and shows as null. */
  totp: { confirmed_at: Date; last_used_at: Date | null } | null;
  /** Recovery codes not used yet. */
  recovery_codes_remaining: number;
  /** The account must enrol a second factor at its next sign-in. */
  enrolment_required: boolean;
}

/** What a reset removed: passkeys, whether a confirmed TOTP factor, and unused recovery codes. */
export interface ResetResult {
  passkeys: number;
  totp: boolean;
  recovery_codes: number;
}

/**
 * The operator side of MFA (the admin API and `latchkey users`): an account's factors, and the
 * compromised-account runbook — remove every factor and send the person through enrolment again.
 * Ending the account's sessions is the caller's part (it knows how to tell their apps).
 */
export class FactorAdministration {
  constructor(private readonly db: Kysely<Database>, private readonly audit: AuditLog, private readonly clock: Clock) {}

  async status(userId: string): Promise<FactorStatus> {
    const [passkeys, totp, codes, required] = await Promise.all([
      this.db.selectFrom('webauthn_credentials').select(['id', 'name', 'created_at', 'last_used_at'])
        .where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute(),
      this.db.selectFrom('totp_factors').select(['confirmed_at', 'last_used_at'])
        .where('user_id', '=', userId).where('confirmed_at', 'is not', null).executeTakeFirst(),
      this.db.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<string | number>().as('n'))
        .where('user_id', '=', userId).where('used_at', 'is', null).executeTakeFirstOrThrow(),
      this.enrolmentRequired(userId),
    ]);
    return {
      passkeys,
      totp: totp ? { confirmed_at: totp.confirmed_at!, last_used_at: totp.last_used_at } : null,
      recovery_codes_remaining: Number(codes.n),
      enrolment_required: required,
    };
  }

  /**
   * Removes every factor of the account and its pending WebAuthn challenges, and requires
   * enrolment at its next sign-in — in one transaction, so no sign-in sees the factors gone but
   * enrolment not yet required. Audited as `mfa.reset`.
   */
  async reset(userId: string, by: Actor): Promise<ResetResult> {
    const now = this.clock.now();
    const result = await this.db.transaction().execute(async (trx) => {
      const passkeys = await trx.deleteFrom('webauthn_credentials').where('user_id', '=', userId).returning('id').execute();
      const totp = await trx.deleteFrom('totp_factors').where('user_id', '=', userId).returning('confirmed_at').execute();
      const codes = await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).returning('used_at').execute();
      await trx.deleteFrom('webauthn_challenges').where('user_id', '=', userId).execute();
      await trx.insertInto('mfa_enrolment_required').values({ user_id: userId, required_at: now })
        .onConflict((oc) => oc.column('user_id').doNothing()).execute();
      return {
        passkeys: passkeys.length,
        totp: totp.some((t) => t.confirmed_at !== null),
        recovery_codes: codes.filter((c) => c.used_at === null).length,
      };
    });
    this.audit.record('mfa.reset', { sub: userId, ...result, ...by });
    return result;
  }

  /** The account must enrol a second factor at its next sign-in (kept as it was if already so). Audited as `mfa.enrolment_required`. */
  async requireEnrolment(userId: string, by: Actor): Promise<void> {
    await this.db.insertInto('mfa_enrolment_required').values({ user_id: userId, required_at: this.clock.now() })
      .onConflict((oc) => oc.column('user_id').doNothing()).execute();
    this.audit.record('mfa.enrolment_required', { sub: userId, ...by });
  }

  async enrolmentRequired(userId: string): Promise<boolean> {
    const row = await this.db.selectFrom('mfa_enrolment_required').select('user_id').where('user_id', '=', userId).executeTakeFirst();
    return row !== undefined;
  }

  /** The sign-in code calls this once the person enrolled a factor. */
  async enrolmentDone(userId: string): Promise<void> {
    await this.db.deleteFrom('mfa_enrolment_required').where('user_id', '=', userId).execute();
  }
}
