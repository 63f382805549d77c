import { sql, type Kysely } from 'kysely';
import type { Migration } from '../../platform/db/migrator.js';

/**
 * The `claims` request parameter (OpenID Connect Core §5.5) an authorization code carries to
 * the token request, whose ID token answers its `id_token` member. Null for codes issued
 * without one (and for every code issued before this migration).
 */
export const authorizationCodeClaims: Migration = {
  name: '0018_authorization_code_claims',
  async up(db: Kysely<any>) {
    await db.schema.alterTable('authorization_codes').addColumn('claims', 'jsonb').execute();
  },
};

/**
 * A code issued without PKCE to a client an administrator exempted from it (require_pkce:
 * false, RFC 9700 §2.1.1) has no challenge: code_challenge (migrations/0014) becomes nullable.
 */
export const optionalCodeChallenge: Migration = {
  name: '0019_authorization_code_optional_challenge',
  async up(db: Kysely<any>) {
    await sql`alter table authorization_codes alter column code_challenge drop not null`.execute(db);
  },
};
