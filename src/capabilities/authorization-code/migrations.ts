import { sql, type Kysely } from 'kysely';
import type { Migration } from '../../platform/db/migrator.js';

/**
 * A code issued without PKCE to a client an administrator exempted from it (require_pkce:
 * false, RFC 9700 §2.1.1) has no challenge: code_challenge (migrations/0014) becomes nullable.
 */
export const optionalCodeChallenge: Migration = {
  name: '0018_authorization_code_optional_challenge',
  async up(db: Kysely<any>) {
    await sql`alter table authorization_codes alter column code_challenge drop not null`.execute(db);
  },
};
