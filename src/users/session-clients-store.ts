import type { Kysely } from 'kysely';
import type { Database } from '../platform/db/schema.js';

/** Which clients to tell when an SSO session ends (Back-Channel Logout 1.0, migration 0016). */
export class SessionClientRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records that `clientId` took part in session `sid` (once; again is a no-op). */
  async add(sid: string, clientId: string, now: Date): Promise<void> {
    await this.db.insertInto('session_clients').values({ sid, client_id: clientId, created_at: now })
      .onConflict((oc) => oc.columns(['sid', 'client_id']).doNothing())
      .execute();
  }

  /** The clients that took part in each of these sessions (read only: an operator's listing). */
  async clientsOf(sids: readonly string[]): Promise<Map<string, string[]>> {
    const map = new Map<string, string[]>();
    if (sids.length === 0) return map;
    const rows = await this.db.selectFrom('session_clients').select(['sid', 'client_id']).where('sid', 'in', [...sids]).orderBy('created_at').orderBy('client_id').execute();
    for (const r of rows) map.set(r.sid, [...(map.get(r.sid) ?? []), r.client_id]);
    return map;
  }

  /** The clients of session `sid`, removed in the same statement: of two callers, one gets them. */
  async take(sid: string): Promise<string[]> {
    const rows = await this.db.deleteFrom('session_clients').where('sid', '=', sid).returning('client_id').execute();
    return rows.map((r) => r.client_id);
  }
}
