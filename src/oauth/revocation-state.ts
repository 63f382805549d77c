import { sql, type Kysely } from 'kysely';
import type { Notifier } from '../platform/db/database.js';
import type { Database } from '../platform/db/schema.js';
import type { AssertionJtiStore } from './client-auth/authenticate.js';

/** The jti denylist of revoked access tokens (RFC 7009), kept until each token's exp. */
export class AccessTokenDenylist implements RevocationTable {
  constructor(private readonly db: Kysely<Database>) {}

  /** Denylists a jti; revoking twice is harmless. True when it was not denylisted yet. */
  async add(jti: string, clientId: string, expiresAt: Date, _reason?: string): Promise<boolean> {
    const row = await this.db.insertInto('revoked_access_tokens')
      .values({ jti, client_id: clientId, expires_at: expiresAt })
      .onConflict((oc) => oc.column('jti').doNothing())
      .returning('jti')
      .executeTakeFirst();
    return row !== undefined;
  }

  /** One primary-key lookup. */
  async isRevoked(jti: string): Promise<boolean> {
    const row = await this.db.selectFrom('revoked_access_tokens').select('jti').where('jti', '=', jti).executeTakeFirst();
    return row !== undefined;
  }

  /** Every entry whose token has not expired yet. */
  async live(now: Date): Promise<Array<[string, Date]>> {
    const rows = await this.db.selectFrom('revoked_access_tokens').select(['jti', 'expires_at']).where('expires_at', '>', now).execute();
    return rows.map((r) => [r.jti, r.expires_at]);
  }

  /** Deletes entries whose token has expired anyway; returns how many. */
  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('revoked_access_tokens').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** The notification that asks every instance to re-read a revocation table. */
const RELOAD = '*';

/** A durable table of revoked ids (access token jtis, grant ids), each kept until `expires_at`. */
export interface RevocationTable {
  /** Records the id (or keeps the later expiry of the two); true when it was not recorded yet. */
  add(id: string, clientId: string, expiresAt: Date, reason: string): Promise<boolean>;
  /** Every entry whose tokens have not all expired yet: [id, expires_at]. */
  live(now: Date): Promise<Array<[string, Date]>>;
}

/**
 * A revocation table held in memory, so introspection and userinfo answer without a database
 * read. Every instance loads the live entries at start, adds what any instance revokes from
 * its NOTIFY at once, and re-reads the table every `reloadSeconds` in case a notification was
 * lost (a dropped LISTEN connection): a revocation made elsewhere reaches this instance within
 * that bound at worst. Entries leave only when their tokens have expired anyway.
 */
export class RevokedSet {
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly channel: string,
    private readonly table: RevocationTable,
    private readonly notifier: Notifier,
    private readonly now: () => Date,
    /**
     * Told, on every instance (the revoking one included, through its own notification), the
     * seconds from a revocation (its time, carried in the NOTIFY payload) to this instance having
     * applied it: latchkey_revocation_propagation_seconds.
     */
    private readonly onApplied?: (seconds: number) => void,
  ) {}

  private applied(revokedAtMs: string | undefined): void {
    const at = Number(revokedAtMs);
    if (this.onApplied && revokedAtMs !== undefined && Number.isFinite(at)) this.onApplied(Math.max(0, (this.now().getTime() - at) / 1000));
  }

  /** Loads the live entries and subscribes; returns the cleanup (unsubscribe and stop the timer). */
  async start(reloadSeconds: number, onError: (err: unknown) => void): Promise<() => Promise<void>> {
    const unlisten = await this.notifier.listen(this.channel, (payload) => {
      // Many ids revoked at once (addWritten), or the LISTEN connection is back after a loss
      // (an empty payload: what was notified meanwhile is lost): re-read the table.
      // Payloads: `<id> <exp ms> <revoked at ms>` (older instances omit the time), or `*`.
      const [id, exp, at] = payload.split(' ');
      if (id === RELOAD || payload === '') {
        this.reload().then(() => { this.applied(exp); }, onError);
        return;
      }
      if (id && Number.isFinite(Number(exp))) { this.entries.set(id, Number(exp)); this.applied(at); }
    });
    try {
      await this.reload();
    } catch (err) {
      await unlisten(); // a failed start leaves no subscription behind
      throw err;
    }
    const timer = setInterval(() => { this.reload().catch(onError); }, reloadSeconds * 1000);
    timer.unref();
    return async () => { clearInterval(timer); await unlisten(); };
  }

  /** Merges the table into memory (never drops an entry a notification just added) and forgets expired ones. */
  async reload(): Promise<void> {
    const now = this.now();
    for (const [id, expiresAt] of await this.table.live(now)) this.entries.set(id, new Date(expiresAt).getTime());
    for (const [id, exp] of this.entries) if (exp <= now.getTime()) this.entries.delete(id);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /**
   * Ids the caller already wrote to the table (in its own statement, e.g. a bulk family
   * revocation): here at once, and one notification makes the other instances re-read the
   * table — not one per id.
   */
  async addWritten(ids: readonly string[], expiresAt: Date): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.entries.set(id, expiresAt.getTime());
    // A bare `*`, which every version reads as "re-read the table" (an instance from before the
    // propagation metric takes `* <time>` for an id): a bulk revocation's propagation is not
    // measured, so that a rolling upgrade never delays one by up to a reload period.
    await this.notifier.notify(this.channel, RELOAD);
  }

  /**
   * Records in the table first (durable), then here, then tells the other instances. True when
   * the table did not hold the id yet (this call revoked it).
   */
  async add(id: string, clientId: string, expiresAt: Date, reason: string): Promise<boolean> {
    const added = await this.table.add(id, clientId, expiresAt, reason);
    this.entries.set(id, expiresAt.getTime());
    await this.notifier.notify(this.channel, `${id} ${expiresAt.getTime()} ${this.now().getTime()}`);
    return added;
  }
}

/** The NOTIFY channels of the two revocation sets. */
export const ACCESS_TOKEN_REVOKED_CHANNEL = 'access_token_revoked';
export const GRANT_REVOKED_CHANNEL = 'grant_revoked';

/**
 * Grants revoked as a whole (a replayed authorization code, RFC 6749 §4.1.2): every access
 * token carrying the grant id (`gid`) is inactive until the last of them has expired.
 */
export class RevokedGrantsTable implements RevocationTable {
  constructor(private readonly db: Kysely<Database>, private readonly clock: () => Date) {}

  /**
   * Inserts the grant; when it was revoked before (concurrent replays of one code, say), keeps
   * the first revocation's reason and the later expiry. A second statement only then.
   */
  async add(grantId: string, clientId: string, expiresAt: Date, reason: string): Promise<boolean> {
    const inserted = await this.db.insertInto('revoked_grants')
      .values({ grant_id: grantId, client_id: clientId, reason, revoked_at: this.clock(), expires_at: expiresAt })
      .onConflict((oc) => oc.column('grant_id').doNothing())
      .returning('grant_id')
      .executeTakeFirst();
    if (inserted) return true;
    await this.db.updateTable('revoked_grants').set({ expires_at: sql<Date>`greatest(expires_at, ${expiresAt})` }).where('grant_id', '=', grantId).execute();
    return false;
  }

  async live(now: Date): Promise<Array<[string, Date]>> {
    const rows = await this.db.selectFrom('revoked_grants').select(['grant_id', 'expires_at']).where('expires_at', '>', now).execute();
    return rows.map((r) => [r.grant_id, r.expires_at]);
  }

  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('revoked_grants').where('expires_at', '<', now).executeTakeFirst();
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
