import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * Trusted external issuers (src/oauth/trusted-issuers/): the operator's declaration of each, as
 * validated by trustedIssuerSchema. `issuer` is unique: one `iss` is one trust decision.
 */
export const trustedIssuers: Migration = {
  name: '0023_trusted_issuers',
  async up(db: Kysely<any>) {
    await sql`create table trusted_issuers (
      name text primary key,
      issuer text not null unique,
      config jsonb not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  },
};
