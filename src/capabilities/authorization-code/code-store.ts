import { sql, type Kysely, type Selectable } from 'kysely';
import type { ClaimsRequest } from '../../oauth/claims.js';
import type { AuthorizationCodesTable, Database } from '../../platform/db/schema.js';

export type AuthorizationCodeRecord = Omit<Selectable<AuthorizationCodesTable>, 'code_hash'>;

export interface NewAuthorizationCode {
  codeHash: Buffer;
  grantId: string;
  clientId: string;
  userId: string;
  redirectUri: string;
  /** Null only for a request that was allowed to leave PKCE out (require_pkce: false). */
  codeChallenge: string | null;
  scope: string;
  audience: string | string[];
  nonce: string | null;
  sid: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
  /** The claims request (OpenID Connect Core §5.5) the token request's ID token answers. */
  claims: ClaimsRequest | null;
}

/** What the token request proves about the code it presents (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8707 §2.2). */
export interface ExpectedRedemption {
  clientId: string;
  redirectUri: string;
  /** The S256 challenge of the request's code_verifier; null when it sent none (only a code issued without a challenge matches). */
  codeChallenge: string | null;
  /** The RFC 8707 `resource`s the request names (none: the whole audience). */
  resources: readonly string[];
}

/** What a redemption attempt found. */
export type Redemption =
  | { outcome: 'redeemed'; code: AuthorizationCodeRecord }
  /** Redeemed before: RFC 6749 §4.1.2 says revoke what was issued from it. */
  | { outcome: 'replayed'; code: AuthorizationCodeRecord }
  /** Live and unredeemed, but issued to another client, redirect URI or challenge, or for another audience. */
  | { outcome: 'mismatch'; code: AuthorizationCodeRecord }
  | { outcome: 'expired' | 'unknown'; code?: AuthorizationCodeRecord };

/** Authorization codes, stored as SHA-256 of the code (DESIGN: secrets at rest are hashes). */
export class AuthorizationCodeRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(c: NewAuthorizationCode, now: Date, ttlSeconds: number): Promise<void> {
    await this.db.insertInto('authorization_codes').values({
      code_hash: c.codeHash, grant_id: c.grantId, client_id: c.clientId, user_id: c.userId,
      redirect_uri: c.redirectUri, code_challenge: c.codeChallenge, scope: c.scope,
      audience: JSON.stringify(c.audience), nonce: c.nonce, sid: c.sid, auth_time: c.authTime,
      amr: c.amr, acr: c.acr, claims: c.claims === null ? null : JSON.stringify(c.claims), created_at: now, expires_at: new Date(now.getTime() + ttlSeconds * 1000), redeemed_at: null,
    }).execute();
  }

  /**
   * Redeems a code in one conditional UPDATE: live, never redeemed, and matching the client,
   * redirect URI and PKCE challenge the token request proves (RFC 6749 §4.1.3, RFC 7636 §4.6)
   * and, when it names `resource`s, holding each of them in its audience (RFC 8707 §2.2: a token
   * request may narrow the audience, never name another resource). A request that does not
   * match leaves the code as it was: a wrong verifier does not burn the legitimate client's
   * code, nor does a `resource` the client can correct and send again. Only when nothing was
   * updated is the row read, to say why.
   */
  async redeem(codeHash: Buffer, expected: ExpectedRedemption, now: Date): Promise<Redemption> {
    let update = this.db.updateTable('authorization_codes').set({ redeemed_at: now })
      .where('code_hash', '=', codeHash)
      .where('redeemed_at', 'is', null)
      .where('expires_at', '>', now)
      .where('client_id', '=', expected.clientId)
      .where('redirect_uri', '=', expected.redirectUri)
      .where('code_challenge', expected.codeChallenge === null ? 'is' : '=', expected.codeChallenge);
    // The audience is one resource (a JSON string) or several (an array): as an array, it contains every one requested.
    if (expected.resources.length > 0) {
      update = update.where(sql<boolean>`(case jsonb_typeof(audience) when 'array' then audience else jsonb_build_array(audience) end) @> ${JSON.stringify(expected.resources)}::jsonb`);
    }
    const redeemed = await update.returningAll().executeTakeFirst();
    if (redeemed) return { outcome: 'redeemed', code: strip(redeemed) };
    const row = await this.db.selectFrom('authorization_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
    if (!row) return { outcome: 'unknown' };
    const code = strip(row);
    if (row.redeemed_at !== null) return { outcome: 'replayed', code };
    if (row.expires_at.getTime() <= now.getTime()) return { outcome: 'expired', code };
    return { outcome: 'mismatch', code };
  }

  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('authorization_codes').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function strip(row: Selectable<AuthorizationCodesTable>): AuthorizationCodeRecord {
  const { code_hash: _, ...code } = row;
  return code;
}
