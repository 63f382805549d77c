import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, SigningKeyState, SigningKeysTable } from '../db/schema.js';

/**
 * The signing_keys table. Every lifecycle change happens inside `withSigningKeyLock`: one
 * transaction holding a transaction-scoped advisory lock, so instances (and the CLI) change keys
 * one at a time and each decides on the rows it re-read under the lock.
 */
export type SigningKeyRow = Selectable<SigningKeysTable>;

/** The advisory lock for key transitions: ("latc", "keys") in ASCII, distinct from the migration lock. */
export const SIGNING_KEYS_LOCK = sql.raw('1818326115, 1801812339');

export type KeysDb = Kysely<Database> | Transaction<Database>;

export async function listSigningKeys(db: KeysDb): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
}

export async function withSigningKeyLock<T>(db: Kysely<Database>, fn: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(${SIGNING_KEYS_LOCK})`.execute(tx);
    return fn(tx);
  });
}

export interface NewSigningKey {
  kid: string;
  alg: SigningKeyRow['alg'];
  state: 'next' | 'active';
  publicJwk: Record<string, unknown>;
  ciphertext: string;
  nonce: string;
  at: Date;
}

export async function insertSigningKey(tx: KeysDb, key: NewSigningKey): Promise<void> {
  await tx.insertInto('signing_keys').values({
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    public_jwk: JSON.stringify(key.publicJwk) as unknown as Record<string, unknown>,
    private_key_ciphertext: key.ciphertext,
    private_key_nonce: key.nonce,
    created_at: key.at,
    activated_at: key.state === 'active' ? key.at : null,
  }).execute();
}

export class SigningKeyConflict extends Error {}

/**
 * Moves one key from `from` to `to` with one conditional UPDATE; throws when the key is not in
 * `from` (someone else moved it: the caller's transaction rolls back). Leaving the published
 * states wipes the encrypted private key: a removed or revoked key can never sign again.
 */
export async function transitionSigningKey(
  tx: KeysDb,
  kid: string,
  from: SigningKeyState,
  to: 'active' | 'retired' | 'removed' | 'revoked',
  at: Date,
  reason: string | null = null,
): Promise<void> {
  const stamp = {
    // Re-activation (retired → active) clears the retirement: the scheduled removal no longer applies.
    active: { activated_at: at, retired_at: null },
    retired: { retired_at: at },
    removed: { removed_at: at, private_key_ciphertext: null, private_key_nonce: null },
    revoked: { revoked_at: at, revoked_reason: reason, private_key_ciphertext: null, private_key_nonce: null },
  }[to];
  const updated = await tx.updateTable('signing_keys')
    .set({ state: to, ...stamp })
    .where('kid', '=', kid)
    .where('state', '=', from)
    .returning('kid')
    .execute();
  if (updated.length !== 1) throw new SigningKeyConflict(`signing key ${kid} is no longer ${from}`);
}

/**
 * Replaces one key's sealed private key (re-encryption under a new KEY_ENCRYPTION_SECRET), on
 * condition that it is still the one read (same nonce): throws SigningKeyConflict otherwise.
 */
export async function resealSigningKey(tx: KeysDb, kid: string, readNonce: string, sealed: { ciphertext: string; nonce: string }): Promise<void> {
  const updated = await tx.updateTable('signing_keys')
    .set({ private_key_ciphertext: sealed.ciphertext, private_key_nonce: sealed.nonce })
    .where('kid', '=', kid)
    .where('private_key_nonce', '=', readNonce)
    .returning('kid')
    .execute();
  if (updated.length !== 1) throw new SigningKeyConflict(`signing key ${kid} changed while it was re-encrypted`);
}
