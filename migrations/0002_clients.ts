import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * The client registry. Registered metadata (RFC 7591 §2 names) lives in one jsonb document,
 * validated by the one zod schema in src/oauth/client-metadata.ts before it is written; the
 * columns are what the server filters or changes atomically: the two secret slots (current
 * and previous, so a rotation overlaps), the registration access token (RFC 7592), disabled.
 * Every secret is stored as its SHA-256 (hex).
 */
export const migration: Migration = {
  name: '0002_clients',
  async up(db: Kysely<any>) {
    await sql`create table clients (
      client_id text primary key,
      client_type text not null check (client_type in ('confidential', 'public')),
      token_endpoint_auth_method text not null,
      metadata jsonb not null,
      secret_hash text,
      secret_expires_at timestamptz,
      previous_secret_hash text,
      previous_secret_expires_at timestamptz,
      registration_access_token_hash text unique,
      source text not null check (source in ('cli', 'admin', 'registration', 'bootstrap')),
      disabled boolean not null default false,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  },
};
