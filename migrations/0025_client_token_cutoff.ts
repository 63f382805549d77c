import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * Two facts about each client for incident response:
 * - `tokens_not_before`: the client's cutoff. Every access token of the client whose `iat` is
 *   before it is inactive (introspection, UserInfo, token exchange), whatever its signature and
 *   expiry say: a leaked secret's tokens end at once, and re-enabling the client revives none.
 * - `last_used_at`: when the client last authenticated (at /token, /introspect, /revoke, /par),
 *   written in batches by each instance (src/oauth/clients/usage.ts), for the stale-client list.
 */
export const clientTokenCutoff: Migration = {
  name: '0025_client_token_cutoff',
  async up(db: Kysely<any>) {
    await sql`alter table clients add column tokens_not_before timestamptz null, add column last_used_at timestamptz null`.execute(db);
  },
};
