import { sql, type Kysely, type Selectable } from 'kysely';
import type { AuditEventsTable, Database } from '../db/schema.js';

export type AuditEventRow = Selectable<AuditEventsTable>;
export type NewAuditEvent = Omit<AuditEventRow, 'id'>;

export interface AuditQuery {
  clientId?: string | undefined;
  sub?: string | undefined;
  event?: string | undefined;
  jti?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** At most this many rows, oldest first (a timeline); capped at 1000. */
  limit?: number | undefined;
}

export class AuditEventRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * One INSERT for a batch of events, the rows passed as a single JSON parameter: far cheaper
   * for the driver (above all embedded PGlite, which runs in this process) than ten bind
   * parameters a row.
   */
  async insertMany(events: readonly NewAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await sql`insert into audit_events (at, event, request_id, client_id, sub, ip, user_agent, jti, details)
      select at, event, request_id, client_id, sub, ip, user_agent, jti, coalesce(details, '{}'::jsonb)
      from jsonb_to_recordset(${JSON.stringify(events)}::jsonb)
        as e(at timestamptz, event text, request_id text, client_id text, sub text, ip text, user_agent text, jti text, details jsonb)`.execute(this.db);
  }

  async query(q: AuditQuery): Promise<AuditEventRow[]> {
    let query = this.db.selectFrom('audit_events').selectAll();
    if (q.clientId) query = query.where('client_id', '=', q.clientId);
    if (q.sub) query = query.where('sub', '=', q.sub);
    if (q.event) query = query.where('event', '=', q.event);
    if (q.jti) query = query.where('jti', '=', q.jti);
    if (q.since) query = query.where('at', '>=', q.since);
    if (q.until) query = query.where('at', '<', q.until);
    return query.orderBy('at').orderBy('id').limit(Math.min(Math.max(q.limit ?? 100, 1), 1000)).execute();
  }

  /**
   * Deletes up to `batch` events older than `before`; returns how many. Rows are claimed with
   * FOR UPDATE SKIP LOCKED, so several instances cleaning at once share the work.
   */
  async deleteOlderThan(before: Date, batch: number): Promise<number> {
    const r = await sql`delete from audit_events where id in (
        select id from audit_events where at < ${before} order by at limit ${batch} for update skip locked)`.execute(this.db);
    return Number(r.numAffectedRows ?? 0n);
  }
}
