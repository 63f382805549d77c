import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, SessionsTable } from '../platform/db/schema.js';
import { assuranceOf, factorTimesOf, withFactors, type FactorName, type FactorTimes } from '../oauth/assurance.js';

/**
 * An SSO session as read: `amr` and `acr` are what its factors make (src/users/assurance.ts),
 * `factor_times` when each was proved, `required_acr` the level its account had to reach.
 */
export type SsoSession = Omit<Selectable<SessionsTable>, 'id_hash' | 'factor_times'> & { factor_times: FactorTimes };

export interface NewSession {
  idHash: Buffer;
  sid: string;
  userId: string;
  authTime: Date;
  /** The factors this sign-in proved (at authTime). */
  factors: readonly FactorName[];
  /** The level the account must reach before the session counts as signed in (its MFA policy). */
  requiredAcr: string | null;
  idleTtlSeconds: number;
  absoluteTtlSeconds: number;
}

const addSeconds = (d: Date, s: number) => new Date(d.getTime() + s * 1000);

/** A stored row as a session: rows from before factor_times keep their stored amr and acr. */
function sessionOf(row: Selectable<SessionsTable>): SsoSession {
  const { id_hash: _, factor_times, ...rest } = row;
  const factors = factorTimesOf(factor_times);
  if (Object.keys(factors).length === 0) return { ...rest, factor_times: factors };
  const { amr, acr } = assuranceOf(factors);
  return { ...rest, amr, acr, factor_times: factors };
}

export class SessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Live SSO sessions (not ended, neither idle- nor absolutely expired): one COUNT, for the latchkey_sso_sessions gauge. */
  async countLive(now: Date): Promise<number> {
    const row = await this.db.selectFrom('sessions').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('ended_at', 'is', null).where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async create(s: NewSession, now: Date): Promise<SsoSession> {
    const factors = withFactors({}, s.factors, s.authTime);
    const { amr, acr } = assuranceOf(factors);
    const row = await this.db.insertInto('sessions').values({
      id_hash: s.idHash, sid: s.sid, user_id: s.userId, auth_time: s.authTime, amr, acr,
      factor_times: JSON.stringify(factors), required_acr: s.requiredAcr,
      created_at: now, last_seen_at: now,
      idle_expires_at: addSeconds(now, s.idleTtlSeconds),
      absolute_expires_at: addSeconds(now, s.absoluteTtlSeconds),
    }).returningAll().executeTakeFirstOrThrow();
    return sessionOf(row);
  }

  /**
   * The live session for a cookie's hash, its idle expiry slid forward — in one conditional
   * UPDATE, so an expired or ended session is never revived by a racing request.
   */
  async touch(idHash: Buffer, idleTtlSeconds: number, now: Date): Promise<SsoSession | undefined> {
    const row = await this.db.updateTable('sessions')
      .set({
        last_seen_at: now,
        // Never beyond the absolute expiry.
        idle_expires_at: sql<Date>`least(${addSeconds(now, idleTtlSeconds)}::timestamptz, absolute_expires_at)`,
      })
      .where('id_hash', '=', idHash)
      .where('ended_at', 'is', null)
      .where('idle_expires_at', '>', now)
      .where('absolute_expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return row ? sessionOf(row) : undefined;
  }

  /**
   * Records factors proved now in a live session (a second factor, a step-up): its amr and acr
   * follow, and auth_time becomes now (OpenID Connect Core §2: the time the person last
   * authenticated). One transaction with the row locked: two factors proved at once both count.
   */
  async addFactors(idHash: Buffer, proved: readonly FactorName[], now: Date): Promise<SsoSession | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('sessions').selectAll()
        .where('id_hash', '=', idHash).where('ended_at', 'is', null)
        .where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
        .forUpdate().executeTakeFirst();
      if (!row) return undefined;
      const factors = withFactors(factorTimesOf(row.factor_times), proved, now);
      const { amr, acr } = assuranceOf(factors);
      const updated = await tx.updateTable('sessions')
        .set({ factor_times: JSON.stringify(factors), amr, acr, auth_time: now, last_seen_at: now })
        .where('id_hash', '=', idHash).returningAll().executeTakeFirstOrThrow();
      return sessionOf(updated);
    });
  }

  /** Ends every live session of a user (disabled, factors reset): returns those it ended. */
  async endAllOf(userId: string, now: Date): Promise<SsoSession[]> {
    const rows = await this.db.updateTable('sessions').set({ ended_at: now })
      .where('user_id', '=', userId).where('ended_at', 'is', null)
      .where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .returningAll().execute();
    return rows.map(sessionOf);
  }

  /** Ends every live session of a user but one (a first factor enrolled: sessions opened with the password alone end). */
  async endOthers(userId: string, keepIdHash: Buffer, now: Date): Promise<SsoSession[]> {
    const rows = await this.db.updateTable('sessions').set({ ended_at: now })
      .where('user_id', '=', userId).where('id_hash', '!=', keepIdHash).where('ended_at', 'is', null)
      .where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .returningAll().execute();
    return rows.map(sessionOf);
  }

  /** The live sessions of a user, newest first. */
  async liveOf(userId: string, now: Date): Promise<SsoSession[]> {
    const rows = await this.db.selectFrom('sessions').selectAll()
      .where('user_id', '=', userId).where('ended_at', 'is', null)
      .where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .orderBy('created_at', 'desc').orderBy('sid').execute();
    return rows.map(sessionOf);
  }

  /** Ends one live session of a user, by its sid (an operator's action); returns it if this call ended it. */
  async endBySid(userId: string, sid: string, now: Date): Promise<SsoSession | undefined> {
    const row = await this.db.updateTable('sessions').set({ ended_at: now })
      .where('user_id', '=', userId).where('sid', '=', sid).where('ended_at', 'is', null)
      .where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .returningAll().executeTakeFirst();
    return row ? sessionOf(row) : undefined;
  }

  /** Ends the session; returns it if it was live. */
  async end(idHash: Buffer, now: Date): Promise<SsoSession | undefined> {
    const row = await this.db.updateTable('sessions').set({ ended_at: now })
      .where('id_hash', '=', idHash).where('ended_at', 'is', null)
      .returningAll().executeTakeFirst();
    return row ? sessionOf(row) : undefined;
  }
}
