import type { Kysely } from 'kysely';
import { Secret, TOTP as Otp } from 'otpauth';
import { renderSVG } from 'uqr';
import type { Database } from '../../platform/db/schema.js';
import {
  KeyEncryption, type EncryptionScheme, type KeyEncryptionSecrets, type ReEncryptionCount, type SealedTable,
} from '../../platform/keys/encryption.js';

/**
 * The TOTP factor (RFC 6238): one secret per account, encrypted at rest, confirmed by a first
 * code before it counts, each code accepted once.
 */

/** RFC 6238 §4 and §5.2 defaults, which every authenticator app supports; ±1 step for clock drift. */
export const TOTP = { digits: 6, period: 30, algorithm: 'SHA1', window: 1 };

/** RFC 4226 §4 R6: a 160-bit shared secret (the HMAC-SHA1 output length). */
const SECRET_BYTES = 20;

/** The key the secrets are sealed under: derived from KEY_ENCRYPTION_SECRET for this use alone. */
export const TOTP_SECRET_ENCRYPTION: EncryptionScheme = { salt: 'latchkey/totp-secrets/v1', info: 'AES-256-GCM TOTP secret encryption' };

export type TotpCheck = 'ok' | 'invalid' | 'replayed';

/**
 * The time step a code matches at `now` within the window (RFC 6238 §5.2), else undefined: also
 * for anything but exactly six digits once spaces are removed (apps show "123 456").
 * otpauth compares each candidate in constant time.
 */
export function matchingStep(secretBase32: string, code: string, now: Date): number | undefined {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return undefined;
  const timestamp = now.getTime();
  const delta = Otp.validate({
    token, secret: Secret.fromBase32(secretBase32),
    algorithm: TOTP.algorithm, digits: TOTP.digits, period: TOTP.period, window: TOTP.window, timestamp,
  });
  return delta === null ? undefined : Otp.counter({ period: TOTP.period, timestamp }) + delta;
}

export class TotpFactors implements SealedTable {
  readonly table = 'totp_factors';
  private readonly encryption: KeyEncryption;

  /** `keyEncryptionSecret`: the current secret, or the current and previous ones while it is changed. */
  constructor(private readonly db: Kysely<Database>, keyEncryptionSecret: string | KeyEncryptionSecrets, private readonly issuerLabel: string) {
    this.encryption = new KeyEncryption(keyEncryptionSecret, TOTP_SECRET_ENCRYPTION);
  }

  /**
   * `keys re-encrypt`: every TOTP secret, confirmed or pending, re-sealed under the current
   * KEY_ENCRYPTION_SECRET in one transaction (rows locked, so a sign-in or an enrolment restart
   * waits for it rather than writing beside it). A secret under neither secret aborts it all.
   */
  async reEncrypt(): Promise<ReEncryptionCount> {
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx.selectFrom('totp_factors').select(['user_id', 'secret_ciphertext', 'secret_nonce']).forUpdate().execute();
      let fromPrevious = 0;
      for (const row of rows) {
        const opened = this.encryption.open(row.user_id, { ciphertext: row.secret_ciphertext, nonce: row.secret_nonce });
        if (!opened.current) fromPrevious++;
        const sealed = this.encryption.encrypt(row.user_id, opened.plaintext);
        await tx.updateTable('totp_factors').set({ secret_ciphertext: sealed.ciphertext, secret_nonce: sealed.nonce })
          .where('user_id', '=', row.user_id).where('secret_nonce', '=', row.secret_nonce).execute();
      }
      return { table: this.table, reEncrypted: rows.length, fromPrevious };
    });
  }

  /**
   * Starts (or restarts) an enrolment: a fresh secret replaces an unconfirmed one in one upsert;
   * a confirmed factor is left alone and the answer is undefined (remove it first, so that
   * replacing a working factor is a deliberate step). The secret is shown once, as base32, as
   * an otpauth:// URI labelled "issuer:username" and as a QR code of that URI.
   */
  async begin(user: { id: string; username: string }, now: Date): Promise<{ secret: string; uri: string; qrSvg: string } | undefined> {
    const secret = new Secret({ size: SECRET_BYTES }).base32;
    // The user id is the associated data: a ciphertext copied onto another account does not decrypt.
    const sealed = this.encryption.encrypt(user.id, secret);
    const row = { secret_ciphertext: sealed.ciphertext, secret_nonce: sealed.nonce, confirmed_at: null, last_used_step: null, created_at: now, last_used_at: null };
    const started = await this.db.insertInto('totp_factors').values({ user_id: user.id, ...row })
      .onConflict((oc) => oc.column('user_id').doUpdateSet(row).where('totp_factors.confirmed_at', 'is', null))
      .returning('user_id').executeTakeFirst();
    if (!started) return undefined;
    const uri = new Otp({
      issuer: this.issuerLabel, label: user.username, secret: Secret.fromBase32(secret),
      algorithm: TOTP.algorithm, digits: TOTP.digits, period: TOTP.period,
    }).toString();
    return { secret, uri, qrSvg: renderSVG(uri) };
  }

  /**
   * Confirms the pending enrolment with a code from the app: proof the person holds the secret.
   * The step it matched becomes last_used_step, so the same code cannot then sign in. The
   * UPDATE also names the nonce of the secret that was checked: an enrolment restarted
   * meanwhile (a new secret) is not confirmed by a code of the old one.
   */
  async confirm(userId: string, code: string, now: Date): Promise<TotpCheck> {
    const pending = await this.db.selectFrom('totp_factors').select(['secret_ciphertext', 'secret_nonce'])
      .where('user_id', '=', userId).where('confirmed_at', 'is', null).executeTakeFirst();
    if (!pending) return 'invalid';
    const step = matchingStep(this.open(userId, pending), code, now);
    if (step === undefined) return 'invalid';
    const confirmed = await this.db.updateTable('totp_factors').set({ confirmed_at: now, last_used_step: step })
      .where('user_id', '=', userId).where('secret_nonce', '=', pending.secret_nonce).where('confirmed_at', 'is', null)
      .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
      .returning('user_id').executeTakeFirst();
    return confirmed ? 'ok' : 'invalid';
  }

  /**
   * Checks a code of the confirmed factor. RFC 6238 §5.2: a code is accepted once, so the step
   * it matched must be later than the last accepted one; the one conditional UPDATE records it,
   * and of two instances racing with the same code exactly one updates the row. The loser (or
   * a code of a step already passed) is 'replayed'. Guessing is for the caller to throttle: each
   * try matches one of three steps, 3 in 10^6.
   */
  async verify(userId: string, code: string, now: Date): Promise<TotpCheck> {
    const factor = await this.db.selectFrom('totp_factors').select(['secret_ciphertext', 'secret_nonce', 'last_used_step'])
      .where('user_id', '=', userId).where('confirmed_at', 'is not', null).executeTakeFirst();
    if (!factor) return 'invalid';
    const step = matchingStep(this.open(userId, factor), code, now);
    if (step === undefined) return 'invalid';
    if (factor.last_used_step !== null && step <= Number(factor.last_used_step)) return 'replayed';
    const accepted = await this.db.updateTable('totp_factors').set({ last_used_step: step, last_used_at: now })
      .where('user_id', '=', userId).where('secret_nonce', '=', factor.secret_nonce).where('confirmed_at', 'is not', null)
      .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
      .returning('user_id').executeTakeFirst();
    // Nothing updated: another request accepted this step (or a later one) since the read, or
    // the factor was removed in between; either way this code signs nobody in.
    return accepted ? 'ok' : 'replayed';
  }

  /** When the confirmed factor was confirmed and last used; undefined when there is none (a pending one is not a factor). */
  async status(userId: string): Promise<{ confirmedAt: Date; lastUsedAt: Date | null } | undefined> {
    const row = await this.db.selectFrom('totp_factors').select(['confirmed_at', 'last_used_at'])
      .where('user_id', '=', userId).executeTakeFirst();
    if (!row || row.confirmed_at === null) return undefined;
    return { confirmedAt: row.confirmed_at, lastUsedAt: row.last_used_at };
  }

  /** Deletes the factor, confirmed or pending; whether there was one. */
  async remove(userId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('totp_factors').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /**
   * The base32 secret. A row that does not decrypt (another KEY_ENCRYPTION_SECRET, a tampered or
   * moved row) throws: a server fault to see in the log, never a silent "wrong code".
   */
  private open(userId: string, row: { secret_ciphertext: string; secret_nonce: string }): string {
    try {
      return this.encryption.decrypt(userId, { ciphertext: row.secret_ciphertext, nonce: row.secret_nonce });
    } catch {
      throw new Error(`the TOTP secret of user ${userId} does not decrypt under KEY_ENCRYPTION_SECRET`);
    }
  }
}
