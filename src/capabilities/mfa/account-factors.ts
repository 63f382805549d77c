import { sql, type Kysely } from 'kysely';
import type { Database } from '../../platform/db/schema.js';
import type { AccountFactors } from './policy.js';

/** What an account has, for the policy and the pages: one round trip (it runs on every password sign-in). */
export interface AccountFactorCounts extends AccountFactors {
  passkeys: number;
  totp: boolean;
  recoveryCodes: number;
  /** When an operator marked the account for enrolment (reset-mfa, require-mfa-enrolment), if it is marked. */
  enrolmentRequiredAt: Date | null;
}

export async function accountFactors(db: Kysely<Database>, userId: string): Promise<AccountFactorCounts> {
  const row = await sql<{ passkeys: string | number; totp: boolean; recovery: string | number; required_at: Date | null }>`
    select (select count(*) from webauthn_credentials where user_id = ${userId}) as passkeys,
           exists(select 1 from totp_factors where user_id = ${userId} and confirmed_at is not null) as totp,
           (select count(*) from recovery_codes where user_id = ${userId} and used_at is null) as recovery,
           (select required_at from mfa_enrolment_required where user_id = ${userId}) as required_at`.execute(db);
  const r = row.rows[0]!;
  const passkeys = Number(r.passkeys);
  const requiredAt = r.required_at === null ? null : new Date(r.required_at);
  return { passkeys, totp: r.totp, recoveryCodes: Number(r.recovery), hasFactor: passkeys > 0 || r.totp, enrolmentRequired: requiredAt !== null, enrolmentRequiredAt: requiredAt };
}
