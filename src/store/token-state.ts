import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { AssertionJtiStore } from '../oauth/client-auth.js';

/** The jti denylist of revoked access tokens (RFC 7009), kept until each token's exp. */
export class AccessTokenDenylist {
  constructor(private readonly db: Kysely<Database>) {}

  /** Denylists a jti; revoking twice is harmless. */
  async add(jti: string, clientId: string, expiresAt: Date): Promise<void> {
    await this.db.insertInto('revoked_access_tokens')
      .values({ jti, client_id: clientId, expires_at: expiresAt })
      .onConflict((oc) => oc.column('jti').doNothing())
      .execute();
  }

  /** One primary-key lookup. */
  async isRevoked(jti: string): Promise<boolean> {
    const row = await this.db.selectFrom('revoked_access_tokens').select('jti').where('jti', '=', jti).executeTakeFirst();
    return row !== undefined;
  }

  /** Deletes entries whose token has expired anyway; returns how many. */
  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('revoked_access_tokens').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** RFC 7523 §3 (7): used client-assertion jtis, per client, until the assertion's exp. */
export class ClientAssertionJtis implements AssertionJtiStore {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => Date) {}

  /**
   * One INSERT: it succeeds for a jti not seen before, and conflicts for a replay. A row whose
   * assertion has expired (not yet purged) may be taken over, in the same statement.
   */
  async consume(clientId: string, jtiHash: string, expiresAt: Date): Promise<boolean> {
    const row = await this.db.insertInto('client_assertion_jtis')
      .values({ client_id: clientId, jti_hash: jtiHash, expires_at: expiresAt })
      .onConflict((oc) => oc.columns(['client_id', 'jti_hash'])
        .doUpdateSet({ expires_at: (eb) => eb.ref('excluded.expires_at') })
        .where('client_assertion_jtis.expires_at', '<=', this.now()))
      .returning(sql<number>`1`.as('ok'))
      .executeTakeFirst();
    return row !== undefined;
  }

  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('client_assertion_jtis').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
