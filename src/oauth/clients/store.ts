import { sql, type Kysely, type Selectable } from 'kysely';
import type { Notifier } from '../../platform/db/database.js';
import type { ClientsTable, Database } from '../../platform/db/schema.js';
import type { Client, ClientSecretSlot } from '../client.js';
import { clientTypeOf, type ClientMetadata } from '../client-metadata.js';

/** Clients per last-used statement. */
const LAST_USED_BATCH = 10_000;

/** The LISTEN/NOTIFY channel on which every change to a client is announced (payload: client_id). */
export const CLIENTS_CHANNEL = 'clients';

export interface NewClientRow {
  clientId: string;
  metadata: ClientMetadata;
  secretHash: string | null;
  registrationAccessTokenHash?: string | null;
  source: Client['source'];
}

/**
 * The clients table. Every write is one statement and, once committed, is announced on the
 * `clients` channel so each instance drops its cached copy (src/oauth/clients/cache.ts).
 */
export class ClientRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly notifier: Notifier,
    /** Called at once for a change made through this repository (this instance's own cache), before the NOTIFY reaches the others. */
    private readonly onChange?: (clientId: string) => void,
  ) {}

  private async changed(clientId: string): Promise<void> {
    this.onChange?.(clientId);
    await this.notifier.notify(CLIENTS_CHANNEL, clientId);
  }

  async find(clientId: string): Promise<Client | undefined> {
    const row = await this.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    return row ? toClient(row) : undefined;
  }

  /** The redirect and post-logout redirect URIs of those of these clients that exist, by client_id. */
  async registeredRedirectUris(clientIds: readonly string[]): Promise<Map<string, string[]>> {
    if (clientIds.length === 0) return new Map();
    const rows = await this.db.selectFrom('clients').select(['client_id', 'metadata']).where('client_id', 'in', [...clientIds]).execute();
    return new Map(rows.map((row) => {
      const metadata = storedMetadata(row.metadata);
      return [row.client_id, [...(metadata.redirect_uris ?? []), ...(metadata.post_logout_redirect_uris ?? [])]];
    }));
  }

  async registrationAccessTokenHash(clientId: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('clients').select('registration_access_token_hash')
      .where('client_id', '=', clientId).executeTakeFirst();
    return row?.registration_access_token_hash ?? undefined;
  }

  async list(): Promise<Client[]> {
    const rows = await this.db.selectFrom('clients').selectAll().orderBy('created_at').orderBy('client_id').execute();
    return rows.map(toClient);
  }

  /** Inserts a new client; undefined when the client_id is taken. */
  async insert(row: NewClientRow): Promise<Client | undefined> {
    const inserted = await this.db.insertInto('clients').values({
      client_id: row.clientId,
      client_type: clientTypeOf(row.metadata),
      token_endpoint_auth_method: row.metadata.token_endpoint_auth_method,
      metadata: JSON.stringify(row.metadata),
      secret_hash: row.secretHash,
      registration_access_token_hash: row.registrationAccessTokenHash ?? null,
      source: row.source,
    }).onConflict((oc) => oc.column('client_id').doNothing()).returningAll().executeTakeFirst();
    if (inserted) await this.changed(row.clientId);
    return inserted ? toClient(inserted) : undefined;
  }

  /**
   * Replaces the metadata. A client whose new method needs no secret loses its secrets; one
   * that needs a secret and has none gets `secretHashIfNone` (a method change to client_secret_*).
   */
  async updateMetadata(clientId: string, metadata: ClientMetadata, secretHashIfNone?: string): Promise<Client | undefined> {
    const keepsSecret = metadata.token_endpoint_auth_method === 'client_secret_basic' || metadata.token_endpoint_auth_method === 'client_secret_post';
    const updated = await this.db.updateTable('clients').set((eb) => ({
      client_type: clientTypeOf(metadata),
      token_endpoint_auth_method: metadata.token_endpoint_auth_method,
      metadata: JSON.stringify(metadata),
      secret_hash: keepsSecret ? eb.fn.coalesce('secret_hash', eb.val(secretHashIfNone ?? null)) : null,
      secret_expires_at: keepsSecret ? eb.ref('secret_expires_at') : null,
      previous_secret_hash: keepsSecret ? eb.ref('previous_secret_hash') : null,
      previous_secret_expires_at: keepsSecret ? eb.ref('previous_secret_expires_at') : null,
      updated_at: new Date(),
    })).where('client_id', '=', clientId).returningAll().executeTakeFirst();
    if (updated) await this.changed(clientId);
    return updated ? toClient(updated) : undefined;
  }

  /**
   * Makes `newHash` the current secret; the current one becomes the previous one and keeps
   * working until `previousExpiresAt` (or its own earlier expiry), so callers can switch over.
   * A secret that was already previous is dropped: at most two are ever active.
   */
  async rotateSecret(clientId: string, newHash: string, previousExpiresAt: Date): Promise<Client | undefined> {
    const updated = await this.db.updateTable('clients').set((eb) => ({
      previous_secret_hash: eb.ref('secret_hash'),
      previous_secret_expires_at: eb.fn('least', [eb.ref('secret_expires_at'), eb.val(previousExpiresAt)]),
      secret_hash: newHash,
      secret_expires_at: null,
      updated_at: new Date(),
    })).where('client_id', '=', clientId).returningAll().executeTakeFirst();
    if (updated) await this.changed(clientId);
    return updated ? toClient(updated) : undefined;
  }

  /**
   * The bootstrap file's upsert: inserts, or replaces metadata and secret when either differs.
   * Returns what happened; an unchanged client is not written (idempotent, no notification).
   */
  async upsertDeclared(row: NewClientRow): Promise<'created' | 'updated' | 'unchanged'> {
    const metadata = JSON.stringify(row.metadata);
    const result = await this.db.insertInto('clients').values({
      client_id: row.clientId,
      client_type: clientTypeOf(row.metadata),
      token_endpoint_auth_method: row.metadata.token_endpoint_auth_method,
      metadata,
      secret_hash: row.secretHash,
      source: row.source,
    }).onConflict((oc) => oc.column('client_id').doUpdateSet((eb) => ({
      client_type: eb.ref('excluded.client_type'),
      token_endpoint_auth_method: eb.ref('excluded.token_endpoint_auth_method'),
      metadata: eb.ref('excluded.metadata'),
      secret_hash: eb.ref('excluded.secret_hash'),
      secret_expires_at: null,
      previous_secret_hash: null,
      previous_secret_expires_at: null,
      source: eb.ref('excluded.source'),
      updated_at: new Date(),
    })).where((eb) => eb.or([
      eb('clients.metadata', 'is distinct from', eb.ref('excluded.metadata')),
      eb('clients.secret_hash', 'is distinct from', eb.ref('excluded.secret_hash')),
      eb('clients.previous_secret_hash', 'is not', null),
      eb('clients.source', '!=', eb.ref('excluded.source')),
    ]))).returning(['created_at', 'updated_at']).executeTakeFirst();
    if (!result) return 'unchanged';
    await this.changed(row.clientId);
    return result.created_at.getTime() === result.updated_at.getTime() ? 'created' : 'updated';
  }

  async setDisabled(clientId: string, disabled: boolean): Promise<Client | undefined> {
    const updated = await this.db.updateTable('clients').set({ disabled, updated_at: new Date() })
      .where('client_id', '=', clientId).returningAll().executeTakeFirst();
    if (updated) await this.changed(clientId);
    return updated ? toClient(updated) : undefined;
  }

  /**
   * Sets the client's cutoff to `cutoff`, or keeps a later one already set (instances' clocks
   * differ; a cutoff never moves back). One statement, announced like every change, so each
   * instance's cache reloads the client with it.
   */
  async setTokenCutoff(clientId: string, cutoff: Date): Promise<Client | undefined> {
    const updated = await this.db.updateTable('clients').set((eb) => ({
      tokens_not_before: eb.fn('greatest', [eb.ref('tokens_not_before'), eb.val(cutoff)]),
      updated_at: new Date(),
    })).where('client_id', '=', clientId).returningAll().executeTakeFirst();
    if (updated) await this.changed(clientId);
    return updated ? toClient(updated) : undefined;
  }

  /**
   * Records when clients last authenticated: one statement per 10,000 clients, each row moved
   * forward only (another instance may have flushed a later time). Not announced: the cache
   * needs no fresh copy for it. Unknown ids match no row.
   */
  async recordLastUsed(usage: ReadonlyMap<string, Date>): Promise<void> {
    const all = [...usage];
    // Two parameters a row: a statement per 10,000 clients stays under PostgreSQL's 65,535.
    for (let i = 0; i < all.length; i += LAST_USED_BATCH) {
      const rows = all.slice(i, i + LAST_USED_BATCH).map(([id, at]) => sql`(${id}::text, ${at.toISOString()}::timestamptz)`);
      await sql`update clients set last_used_at = greatest(clients.last_used_at, v.t)
        from (values ${sql.join(rows)}) as v(id, t) where clients.client_id = v.id`.execute(this.db);
    }
  }

  /** The clients not used since `since`: last used before it, or never used and created before it. Oldest use first. */
  async unusedSince(since: Date): Promise<Client[]> {
    const rows = await this.db.selectFrom('clients').selectAll()
      .where((eb) => eb(eb.fn.coalesce('last_used_at', 'created_at'), '<', since))
      .orderBy((eb) => eb.fn.coalesce('last_used_at', 'created_at')).orderBy('client_id').execute();
    return rows.map(toClient);
  }

  async delete(clientId: string): Promise<boolean> {
    const deleted = await this.db.deleteFrom('clients').where('client_id', '=', clientId).returning('client_id').executeTakeFirst();
    if (deleted) await this.changed(clientId);
    return Boolean(deleted);
  }
}

/** The metadata column as read: jsonb comes back parsed, or as text to parse. */
function storedMetadata(value: Selectable<ClientsTable>['metadata']): ClientMetadata {
  return (typeof value === 'string' ? JSON.parse(value) : value) as ClientMetadata;
}

function toClient(row: Selectable<ClientsTable>): Client {
  const secrets: ClientSecretSlot[] = [];
  if (row.secret_hash) secrets.push({ hash: row.secret_hash, expiresAt: row.secret_expires_at });
  if (row.previous_secret_hash) secrets.push({ hash: row.previous_secret_hash, expiresAt: row.previous_secret_expires_at });
  return {
    clientId: row.client_id,
    clientType: row.client_type,
    metadata: storedMetadata(row.metadata),
    secrets,
    disabled: row.disabled,
    source: row.source,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    tokensNotBefore: row.tokens_not_before,
    lastUsedAt: row.last_used_at,
  };
}
