import type { Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * The clients with a backchannel_logout_uri that took part in each SSO session (OpenID Connect
 * Back-Channel Logout 1.0 §2.3): recorded when a code is issued to one of them in that session,
 * taken (deleted) when the session ends and they are told. Rows go with their session or client.
 */
export const sessionClients: Migration = {
  name: '0016_session_clients',
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('session_clients')
      .addColumn('sid', 'text', (c) => c.notNull().references('sessions.sid').onDelete('cascade'))
      .addColumn('client_id', 'text', (c) => c.notNull().references('clients.client_id').onDelete('cascade'))
      .addColumn('created_at', 'timestamptz', (c) => c.notNull())
      .addPrimaryKeyConstraint('session_clients_pk', ['sid', 'client_id'])
      .execute();
  },
};
