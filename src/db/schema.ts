import type { Generated } from 'kysely';

/**
 * The table types kysely checks every query against: declared once, here. Each migration that
 * adds a table adds its interface and its entry in `Database`.
 */

export interface LatchkeyMigrationsTable {
  name: string;
  applied_at: Generated<Date>;
}

/** migrations/0002_clients.ts */
export interface ClientsTable {
  client_id: string;
  client_type: 'confidential' | 'public';
  token_endpoint_auth_method: string;
  /** The validated RFC 7591 metadata document (src/oauth/client-metadata.ts). */
  metadata: unknown;
  secret_hash: string | null;
  secret_expires_at: Date | null;
  previous_secret_hash: string | null;
  previous_secret_expires_at: Date | null;
  registration_access_token_hash: string | null;
  source: 'cli' | 'admin' | 'registration' | 'bootstrap';
  disabled: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** migrations/0003_token_revocations.ts */
export interface RevokedAccessTokensTable {
  jti: string;
  client_id: string;
  expires_at: Date;
  revoked_at: Generated<Date>;
}

/** migrations/0004_client_assertion_jtis.ts */
export interface ClientAssertionJtisTable {
  client_id: string;
  jti_hash: string;
  expires_at: Date;
}

export interface Database {
  latchkey_migrations: LatchkeyMigrationsTable;
  clients: ClientsTable;
  revoked_access_tokens: RevokedAccessTokensTable;
  client_assertion_jtis: ClientAssertionJtisTable;
}
