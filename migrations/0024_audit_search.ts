import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * The audit trail searchable by what an on-call has in hand (GET /admin/audit, `latchkey audit`):
 * an IP, an event prefix, a grant type, a scope. Each index serves a filter that would otherwise
 * read the whole table. grant_type and scope stay in `details` (only some events have them, and
 * the writer and the rows already stored need no change): partial expression indexes on exactly
 * the expressions AuditEventRepository.page filters by, so they cost nothing for events without
 * them (the predicates are IS NOT NULL of the indexed expression: a filter by it implies them). A user agent substring has no index (it would need pg_trgm); it is meant with a time
 * window or another filter.
 */
export const auditSearch: Migration = {
  name: '0024_audit_search',
  async up(db: Kysely<any>) {
    await sql`create index audit_events_ip_idx on audit_events (ip, at) where ip is not null`.execute(db);
    // text_pattern_ops: `event like 'token.%'` can use it whatever the database's collation.
    await sql`create index audit_events_event_prefix_idx on audit_events (event text_pattern_ops, at)`.execute(db);
    await sql`create index audit_events_grant_type_idx on audit_events ((details->>'grant_type'), at) where (details->>'grant_type') is not null`.execute(db);
    await sql`create index audit_events_scope_idx on audit_events using gin (string_to_array(details->>'scope', ' ')) where string_to_array(details->>'scope', ' ') is not null`.execute(db);
  },
};
