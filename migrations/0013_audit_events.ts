import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/** The durable audit trail: one row per security event, queryable by client, subject, event and time. */
export const auditEvents: Migration = {
  name: '0013_audit_events',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('audit_events')
      .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
      .addColumn('at', 'timestamptz', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('request_id', 'text')
      .addColumn('client_id', 'text')
      .addColumn('sub', 'text')
      .addColumn('ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('jti', 'text')
      .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
      .execute();
    await db.schema.createIndex('audit_events_at_idx').on('audit_events').column('at').execute();
    await db.schema.createIndex('audit_events_client_idx').on('audit_events').columns(['client_id', 'at']).execute();
    await db.schema.createIndex('audit_events_sub_idx').on('audit_events').columns(['sub', 'at']).execute();
    await db.schema.createIndex('audit_events_event_idx').on('audit_events').columns(['event', 'at']).execute();
    await db.schema.createIndex('audit_events_jti_idx').on('audit_events').column('jti').where('jti', 'is not', null).execute();
  },
};
