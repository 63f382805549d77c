import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { Database, RefreshFamiliesTable, RefreshTokenState } from '../../platform/db/schema.js';

export type RefreshFamilyRecord = Selectable<RefreshFamiliesTable>;

/** What a family is born with: the grant it comes from (its id is the grant id). */
export interface NewRefreshFamily {
  id: string;
  clientId: string;
  userId: string;
  scope: string;
  audience: string | string[];
  sid: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
  absoluteExpiresAt: Date;
  /** The client's IP address at the token request that creates the family. */
  ip?: string | undefined;
}

/** A presented refresh token as stored: the token, its family, and the state of its successor (if any). */
export interface StoredRefreshToken {
  familyId: string;
  generation: number;
  state: RefreshTokenState;
  expiresAt: Date;
  rotatedAt: Date | null;
  successor: { ciphertext: string; nonce: string } | null;
  successorState: RefreshTokenState | null;
  family: RefreshFamilyRecord;
}

/** The successor a rotation issues: its hash, its idle expiry, and (grace window on) itself encrypted. */
export interface Successor {
  hash: Buffer;
  /** now + the idle lifetime; capped at the family's absolute expiry in SQL. */
  idleExpiresAt: Date;
  sealed: { ciphertext: string; nonce: string } | null;
}

/** Which families a bulk revocation takes (at least one of the two). */
export interface FamilyFilter {
  userId?: string;
  clientId?: string;
}

export interface RevokedFamily {
  id: string;
  client_id: string;
  user_id: string;
}

/**
 * A family as an operator sees it (a "grant" in the admin API): who, which client, what scope,
 * when and from where it was created and last rotated, and its state — never a token.
 */
export function grantView(f: RefreshFamilyRecord, now: Date): Record<string, unknown> {
  const expiresAt = f.idle_expires_at < f.absolute_expires_at ? f.idle_expires_at : f.absolute_expires_at;
  const state = f.revoked_at !== null ? 'revoked' : expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  return {
    grant_id: f.id, client_id: f.client_id, sub: f.user_id, scope: f.scope, state,
    created_at: f.created_at.toISOString(), created_ip: f.created_ip,
    last_rotated_at: f.last_rotated_at?.toISOString() ?? null, last_rotated_ip: f.last_rotated_ip,
    expires_at: expiresAt.toISOString(),
    ...(f.revoked_at !== null ? { revoked_at: f.revoked_at.toISOString(), revoked_reason: f.revoked_reason } : {}),
  };
}

/**
 * Refresh token families and their tokens (migrations/0015). Every state change is one SQL
 * statement (DESIGN): a family is born with its first token, a rotation marks the presented
 * token rotated and inserts its successor only if it was the active one, a revocation takes the
 * family and all its tokens at once.
 */
export class RefreshTokenRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Live refresh families (not revoked, neither idle- nor absolutely expired): one COUNT, for the latchkey_refresh_families gauge. */
  async countLive(now: Date): Promise<number> {
    const row = await this.db.selectFrom('refresh_families').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('revoked_at', 'is', null).where('idle_expires_at', '>', now).where('absolute_expires_at', '>', now)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Creates a family and its first token in one statement. A grant revoked before this
   * statement began (a code replayed while its first redemption was still running) gives a
   * family born revoked; one revoked while it runs is caught by revokeIfGrantRevoked after it
   * (rotation.ts startRefreshFamily), so the race cannot leave a live refresh token behind.
   */
  async startFamily(f: NewRefreshFamily, tokenHash: Buffer, tokenExpiresAt: Date, now: Date): Promise<{ revoked: boolean }> {
    const result = await sql<{ state: RefreshTokenState }>`
      with revoked as (select revoked_at, reason from revoked_grants where grant_id = ${f.id}),
      f as (
        insert into refresh_families (id, client_id, user_id, scope, audience, sid, auth_time, amr, acr, created_at,
          absolute_expires_at, idle_expires_at, revoked_at, revoked_reason, created_ip)
        values (${f.id}, ${f.clientId}, ${f.userId}, ${f.scope}, ${JSON.stringify(f.audience)}::jsonb, ${f.sid}, ${f.authTime},
          ${f.amr}::text[], ${f.acr}, ${now}, ${f.absoluteExpiresAt}, ${tokenExpiresAt},
          (select revoked_at from revoked), (select reason from revoked), ${f.ip ?? null})
        returning id, revoked_at
      )
      insert into refresh_tokens (token_hash, family_id, generation, state, created_at, expires_at)
      select ${tokenHash}, id, 1, case when revoked_at is null then 'active' else 'revoked' end, ${now}, ${tokenExpiresAt} from f
      returning state`.execute(this.db);
    return { revoked: result.rows[0]?.state !== 'active' };
  }

  /** The token with this hash, its family and its successor's state; one indexed read. */
  async find(tokenHash: Buffer): Promise<StoredRefreshToken | undefined> {
    const row = await this.db.selectFrom('refresh_tokens as t')
      .innerJoin('refresh_families as f', 'f.id', 't.family_id')
      .leftJoin('refresh_tokens as s', (join) => join.onRef('s.family_id', '=', 't.family_id').on('s.generation', '=', sql<number>`t.generation + 1`))
      .selectAll('f')
      .select(['t.generation', 't.state', 't.expires_at as token_expires_at', 't.rotated_at', 't.successor_ciphertext', 't.successor_nonce', 's.state as successor_state'])
      .where('t.token_hash', '=', tokenHash)
      .executeTakeFirst();
    if (!row) return undefined;
    const { generation, state, token_expires_at: expiresAt, rotated_at: rotatedAt, successor_ciphertext: ciphertext, successor_nonce: nonce, successor_state: successorState, ...family } = row;
    return {
      familyId: family.id, generation, state, expiresAt, rotatedAt,
      successor: ciphertext !== null && nonce !== null ? { ciphertext, nonce } : null,
      successorState: successorState ?? null,
      family,
    };
  }

  /**
   * Rotation, in one statement: only if the presented token is its family's active one, live,
   * the family live and the caller's, it becomes `rotated` (keeping its sealed successor), the
   * successor of the next generation is inserted `active`, the family's idle expiry slides to
   * the successor's (with the time and client IP of this rotation), and the predecessor's kept copy of the presented token is erased (once a
   * token has been rotated, presenting its predecessor is reuse whatever the window). Two racing
   * rotations: the second waits on the row lock and then finds the token no longer active.
   * Returns the successor's generation and expiry, or undefined when nothing was rotated.
   */
  async rotate(tokenHash: Buffer, clientId: string, successor: Successor, now: Date, ip?: string): Promise<{ generation: number; expiresAt: Date } | undefined> {
    const result = await sql<{ generation: number; expires_at: Date }>`
      with old as (
        update refresh_tokens t set state = 'rotated', rotated_at = ${now},
          successor_ciphertext = ${successor.sealed?.ciphertext ?? null}, successor_nonce = ${successor.sealed?.nonce ?? null}
        from refresh_families f
        where t.token_hash = ${tokenHash} and t.state = 'active' and t.expires_at > ${now}
          and f.id = t.family_id and f.client_id = ${clientId} and f.revoked_at is null and f.absolute_expires_at > ${now}
        returning t.family_id, t.generation, f.absolute_expires_at
      ),
      next as (
        insert into refresh_tokens (token_hash, family_id, generation, state, created_at, expires_at)
        select ${successor.hash}, family_id, generation + 1, 'active', ${now}, least(${successor.idleExpiresAt}::timestamptz, absolute_expires_at) from old
        returning family_id, generation, expires_at
      ),
      slid as (
        update refresh_families f set idle_expires_at = next.expires_at, last_rotated_at = ${now}, last_rotated_ip = ${ip ?? null}
        from next where f.id = next.family_id returning f.id
      ),
      erased as (
        update refresh_tokens p set successor_ciphertext = null, successor_nonce = null from old
        where p.family_id = old.family_id and p.generation = old.generation - 1 and p.successor_ciphertext is not null
        returning p.generation
      )
      select next.generation, next.expires_at from next`.execute(this.db);
    const row = result.rows[0];
    return row ? { generation: Number(row.generation), expiresAt: new Date(row.expires_at) } : undefined;
  }

  /** One family by its id (the grant id), revoked or not. */
  async findFamily(familyId: string): Promise<RefreshFamilyRecord | undefined> {
    return this.db.selectFrom('refresh_families').selectAll().where('id', '=', familyId).executeTakeFirst();
  }

  /**
   * The families of a user or of a client (the admin's grant listing), newest first, at most
   * `limit`: live ones and revoked or expired ones alike (each says its state).
   */
  async listFamilies(filter: FamilyFilter, limit: number): Promise<RefreshFamilyRecord[]> {
    if (filter.userId === undefined && filter.clientId === undefined) throw new Error('listFamilies needs a user or a client');
    let query = this.db.selectFrom('refresh_families').selectAll();
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.clientId !== undefined) query = query.where('client_id', '=', filter.clientId);
    return query.orderBy('created_at', 'desc').orderBy('id').limit(limit).execute();
  }

  /**
   * Revokes a family (and its tokens) if its grant is in revoked_grants, with the reason
   * recorded there, in one statement; true when this call revoked it. A family's birth runs it
   * right after startFamily (src/oauth/refresh-families/rotation.ts startRefreshFamily says why).
   */
  async revokeIfGrantRevoked(familyId: string, now: Date): Promise<boolean> {
    const revoked = await this.revokeWhere(
      sql`id = ${familyId} and exists (select 1 from revoked_grants g where g.grant_id = ${familyId})`,
      sql<string>`(select g.reason from revoked_grants g where g.grant_id = ${familyId})`, now,
    );
    return revoked.length > 0;
  }

  /** Revokes one family and all its tokens; returns it when this call revoked it (not before). */
  async revokeFamily(familyId: string, reason: string, now: Date): Promise<RevokedFamily | undefined> {
    return (await this.revokeWhere(sql`id = ${familyId}`, reason, now))[0];
  }

  /**
   * Revokes every live family of a user, a client, or a user+client pair, and revokes their
   * grants (revoked_grants, until `grantsExpireAt`) in the same statement: no failure half-way
   * can leave a revoked family whose access tokens still pass introspection.
   */
  async revokeFamilies(filter: FamilyFilter, reason: string, now: Date, grants: { reason: string; expiresAt: Date }): Promise<RevokedFamily[]> {
    if (filter.userId === undefined && filter.clientId === undefined) throw new Error('revokeFamilies needs a user or a client');
    const conditions = [
      ...(filter.userId !== undefined ? [sql`user_id = ${filter.userId}`] : []),
      ...(filter.clientId !== undefined ? [sql`client_id = ${filter.clientId}`] : []),
    ];
    return this.revokeWhere(sql.join(conditions, sql` and `), reason, now, grants);
  }

  /**
   * Ends the authorization codes of a user, a client or a pair that are not redeemed yet, so
   * no family can be born from a code issued before a bulk revocation.
   */
  async expirePendingCodes(filter: FamilyFilter, now: Date): Promise<number> {
    let query = this.db.updateTable('authorization_codes').set({ expires_at: now })
      .where('redeemed_at', 'is', null).where('expires_at', '>', now);
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.clientId !== undefined) query = query.where('client_id', '=', filter.clientId);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  private async revokeWhere(condition: RawBuilder<unknown>, reason: string | RawBuilder<string>, now: Date, grants?: { reason: string; expiresAt: Date }): Promise<RevokedFamily[]> {
    const grantRows = grants === undefined ? sql`` : sql`,
      g as (
        insert into revoked_grants (grant_id, client_id, reason, revoked_at, expires_at)
        select id, client_id, ${grants.reason}, ${now}, ${grants.expiresAt} from f
        on conflict (grant_id) do update set expires_at = greatest(revoked_grants.expires_at, excluded.expires_at)
        returning grant_id
      )`;
    const result = await sql<RevokedFamily>`
      with f as (
        update refresh_families set revoked_at = ${now}, revoked_reason = ${reason}
        where revoked_at is null and ${condition}
        returning id, client_id, user_id
      ),
      t as (
        update refresh_tokens t set state = 'revoked', successor_ciphertext = null, successor_nonce = null
        from f where t.family_id = f.id and (t.state <> 'revoked' or t.successor_ciphertext is not null)
        returning t.generation
      )${grantRows}
      select id, client_id, user_id from f`.execute(this.db);
    return result.rows;
  }
}
