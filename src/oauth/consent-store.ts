import { sql, type Kysely } from 'kysely';
import type { Database } from '../platform/db/schema.js';

const tokens = (scopes: string) => scopes.split(' ').filter(Boolean);

/** What each user has granted each client. Granting adds to what was granted before. */
export class ConsentRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async grantedScopes(userId: string, clientId: string): Promise<Set<string>> {
    const row = await this.db.selectFrom('consents').select('scopes')
      .where('user_id', '=', userId).where('client_id', '=', clientId).executeTakeFirst();
    return new Set(row ? tokens(row.scopes) : []);
  }

  /** Records a grant as the union with the earlier one, atomically (two tabs consenting at once both count). */
  async grant(userId: string, clientId: string, scopes: readonly string[], now: Date): Promise<Set<string>> {
    const row = await this.db.insertInto('consents')
      .values({ user_id: userId, client_id: clientId, scopes: [...new Set(scopes)].join(' '), granted_at: now, updated_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'client_id']).doUpdateSet({
        // Union of both scope lists, order of first appearance kept.
        scopes: sql<string>`(select string_agg(t, ' ' order by min_ord) from (
            select t, min(ord) as min_ord from unnest(string_to_array(consents.scopes || ' ' || excluded.scopes, ' ')) with ordinality as u(t, ord)
            where t <> '' group by t) s)`,
        updated_at: now,
      }))
      .returning('scopes')
      .executeTakeFirstOrThrow();
    return new Set(tokens(row.scopes));
  }

  /** What a user granted, to which clients, newest first (the account page). */
  async listFor(userId: string): Promise<{ clientId: string; scopes: string[]; grantedAt: Date; updatedAt: Date }[]> {
    const rows = await this.db.selectFrom('consents').selectAll().where('user_id', '=', userId).orderBy('updated_at', 'desc').execute();
    return rows.map((r) => ({ clientId: r.client_id, scopes: tokens(r.scopes), grantedAt: r.granted_at, updatedAt: r.updated_at }));
  }

  /** Withdraws consent (a user+client pair); returns whether there was one. */
  async revoke(userId: string, clientId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('consents').where('user_id', '=', userId).where('client_id', '=', clientId).executeTakeFirst();
    return r.numDeletedRows > 0n;
  }
}
