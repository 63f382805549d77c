import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, SessionsTable } from '../platform/db/schema.js';

export type SsoSession = Omit<Selectable<SessionsTable>, 'id_hash'>;

export interface NewSession {
  idHash: Buffer;
  sid: string;
  userId: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
  idleTtlSeconds: number;
  absoluteTtlSeconds: number;
}

const addSeconds = (d: Date, s: number) => new Date(d.getTime() + s * 1000);

export class SessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(s: NewSession, now: Date): Promise<SsoSession> {
    const { id_hash: _, ...row } = await this.db.insertInto('sessions').values({
      id_hash: s.idHash, sid: s.sid, user_id: s.userId, auth_time: s.authTime, amr: s.amr, acr: s.acr,
      created_at: now, last_seen_at: now,
      idle_expires_at: addSeconds(now, s.idleTtlSeconds),
      absolute_expires_at: addSeconds(now, s.absoluteTtlSeconds),
    }).returningAll().executeTakeFirstOrThrow();
    return row;
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
    if (!row) return undefined;
    const { id_hash: _, ...session } = row;
    return session;
  }

  /** Ends every live session of a user (disabled): returns those it ended. */
  async endAllOf(userId: string, now: Date): Promise<SsoSession[]> {
    const rows = await this.db.updateTable('sessions').set({ ended_at: now })
      .where('user_id', '=', userId).where('ended_at', 'is', null)
      .where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .returningAll().execute();
    return rows.map(({ id_hash: _, ...session }) => session);
  }

  /** Ends the session; returns it if it was live. */
  async end(idHash: Buffer, now: Date): Promise<SsoSession | undefined> {
    const row = await this.db.updateTable('sessions').set({ ended_at: now })
      .where('id_hash', '=', idHash).where('ended_at', 'is', null)
      .returningAll().executeTakeFirst();
    if (!row) return undefined;
    const { id_hash: _, ...session } = row;
    return session;
  }
}
