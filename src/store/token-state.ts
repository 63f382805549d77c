import { sql, type Kysely } from 'kysely';
import type { Notifier } from '../db/database.js';
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

  /** Every entry whose token has not expired yet. */
  async live(now: Date): Promise<Array<{ jti: string; expires_at: Date }>> {
    return this.db.selectFrom('revoked_access_tokens').select(['jti', 'expires_at']).where('expires_at', '>', now).execute();
  }

  /** Deletes entries whose token has expired anyway; returns how many. */
  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('revoked_access_tokens').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/**
 * The denylist held in memory, so introspection (and later userinfo) answers without a database
 * read. Every instance loads the live entries at start, adds what any instance revokes from
 * its NOTIFY at once, and re-reads the table every `reloadSeconds` in case a notification was
 * lost (a dropped LISTEN connection): a revocation made elsewhere reaches this instance within
 * that bound at worst. Entries leave only when their token has expired anyway.
 */
export class RevokedAccessTokens {
  static readonly CHANNEL = 'access_token_revoked';
  private readonly entries = new Map<string, number>();

  constructor(private readonly denylist: AccessTokenDenylist, private readonly notifier: Notifier, private readonly now: () => Date) {}

  /** Loads the live entries and subscribes; returns the cleanup (unsubscribe and stop the timer). */
  async start(reloadSeconds: number, onError: (err: unknown) => void): Promise<() => Promise<void>> {
    const unlisten = await this.notifier.listen(RevokedAccessTokens.CHANNEL, (payload) => {
      const [jti, exp] = payload.split(' ');
      if (jti && Number.isFinite(Number(exp))) this.entries.set(jti, Number(exp));
    });
    await this.reload();
    const timer = setInterval(() => { this.reload().catch(onError); }, reloadSeconds * 1000);
    timer.unref();
    return async () => { clearInterval(timer); await unlisten(); };
  }

  /** Merges the table into memory (never drops an entry a notification just added) and forgets expired ones. */
  async reload(): Promise<void> {
    const now = this.now();
    for (const row of await this.denylist.live(now)) this.entries.set(row.jti, new Date(row.expires_at).getTime());
    for (const [jti, exp] of this.entries) if (exp <= now.getTime()) this.entries.delete(jti);
  }

  has(jti: string): boolean {
    return this.entries.has(jti);
  }

  /** Denylists in the table first (durable), then here, then tells the other instances. */
  async add(jti: string, clientId: string, expiresAt: Date): Promise<void> {
    await this.denylist.add(jti, clientId, expiresAt);
    this.entries.set(jti, expiresAt.getTime());
    await this.notifier.notify(RevokedAccessTokens.CHANNEL, `${jti} ${expiresAt.getTime()}`);
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
