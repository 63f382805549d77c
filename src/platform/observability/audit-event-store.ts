import { sql, type Kysely, type Selectable } from 'kysely';
import type { AuditEventsTable, Database } from '../db/schema.js';

export type AuditEventRow = Selectable<AuditEventsTable>;
export type NewAuditEvent = Omit<AuditEventRow, 'id'>;

export interface AuditQuery {
  clientId?: string | undefined;
  sub?: string | undefined;
  event?: string | undefined;
  jti?: string | undefined;
  /** Exact client address. */
  ip?: string | undefined;
  /** A substring of the user agent (case-sensitive). */
  userAgent?: string | undefined;
  /** `details.grant_type` equal to this. */
  grantType?: string | undefined;
  /** One scope token contained in `details.scope` (space-separated). */
  scope?: string | undefined;
  /** Every event whose name starts with this (`token.` → every token event). */
  eventPrefix?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** At most this many rows, oldest first (a timeline); capped at 1000. */
  limit?: number | undefined;
  /** Only rows after this one in the timeline's order (keyset pagination: the last row of the previous page). */
  after?: AuditPosition | undefined;
}

/** A row's place in the timeline: ordered by `at`, then `id`. */
export interface AuditPosition {
  at: Date;
  id: string;
}

export interface AuditPage {
  events: AuditEventRow[];
  /** The position of the last event when more follow, else undefined. */
  next: AuditPosition | undefined;
}

/**
 * PostgreSQL text and jsonb cannot hold a NUL byte nor an unpaired UTF-16 surrogate, and an
 * event can carry one a client sent (a claimed client_id): each is stored as U+FFFD, else the
 * whole batch — every event in it — would fail again at each retry. (JSON request bodies with an
 * unpaired surrogate are refused at parsing, src/server/http/server.ts; this is the last line.)
 */
const storable = (_key: string, value: unknown) => {
  if (typeof value !== 'string') return value;
  const text = value.isWellFormed() ? value : value.toWellFormed();
  return text.includes('\u0000') ? text.replace(/\u0000/g, '\uFFFD') : text;
};

/** `prefix%` with LIKE's own wildcards (`_`, `%`, `\\`) taken literally. */
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

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
      from jsonb_to_recordset(${JSON.stringify(events, storable)}::jsonb)
        as e(at timestamptz, event text, request_id text, client_id text, sub text, ip text, user_agent text, jti text, details jsonb)`.execute(this.db);
  }

  async query(q: AuditQuery): Promise<AuditEventRow[]> {
    return (await this.page(q)).events;
  }

  /** One page of the timeline, and where the next one starts (one row more is read to know). */
  async page(q: AuditQuery): Promise<AuditPage> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    let query = this.db.selectFrom('audit_events').selectAll();
    const after = q.after;
    if (after) query = query.where((eb) => eb.or([eb('at', '>', after.at), eb.and([eb('at', '=', after.at), eb('id', '>', after.id)])]));
    if (q.clientId) query = query.where('client_id', '=', q.clientId);
    if (q.sub) query = query.where('sub', '=', q.sub);
    if (q.event) query = query.where('event', '=', q.event);
    if (q.jti) query = query.where('jti', '=', q.jti);
    if (q.ip) query = query.where('ip', '=', q.ip);
    if (q.userAgent) query = query.where(sql<boolean>`strpos(user_agent, ${q.userAgent}) > 0`);
    // Written as the expressions migration 0024 indexes, so the planner can use them.
    if (q.grantType) query = query.where(sql<boolean>`(details->>'grant_type') = ${q.grantType}`);
    if (q.scope) query = query.where(sql<boolean>`string_to_array(details->>'scope', ' ') @> array[${q.scope}::text]`);
    if (q.eventPrefix) query = query.where(sql<boolean>`event like ${likePrefix(q.eventPrefix)}`);
    if (q.since) query = query.where('at', '>=', q.since);
    if (q.until) query = query.where('at', '<', q.until);
    const rows = await query.orderBy('at').orderBy('id').limit(limit + 1).execute();
    if (rows.length <= limit) return { events: rows, next: undefined };
    const events = rows.slice(0, limit);
    const last = events[events.length - 1]!;
    return { events, next: { at: last.at, id: String(last.id) } };
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
