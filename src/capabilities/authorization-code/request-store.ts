import type { Kysely } from 'kysely';
import type { Database } from '../../platform/db/schema.js';

export type AuthorizationRequestKind = 'par' | 'interaction';

/**
 * Pushed authorization requests (RFC 9126) and pending interactions (a request waiting for the
 * browser to sign in or consent), keyed by the SHA-256 of their random id. Each is consumed at
 * most once, by one conditional UPDATE: two racing uses, one wins.
 */
export class AuthorizationRequestRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async save(kind: AuthorizationRequestKind, idHash: Buffer, clientId: string, params: unknown, now: Date, ttlSeconds: number): Promise<void> {
    await this.db.insertInto('authorization_requests').values({
      id_hash: idHash, kind, client_id: clientId, params: JSON.stringify(params), created_at: now,
      expires_at: new Date(now.getTime() + ttlSeconds * 1000), consumed_at: null,
    }).execute();
  }

  /** A live, unconsumed request, read without consuming it. */
  async find(kind: AuthorizationRequestKind, idHash: Buffer, now: Date): Promise<{ clientId: string; params: unknown; createdAt: Date } | undefined> {
    const row = await this.db.selectFrom('authorization_requests').select(['client_id', 'params', 'created_at'])
      .where('id_hash', '=', idHash).where('kind', '=', kind)
      .where('consumed_at', 'is', null).where('expires_at', '>', now)
      .executeTakeFirst();
    return row ? { clientId: row.client_id, params: row.params, createdAt: row.created_at } : undefined;
  }

  /** Consumes a live request of `clientId`; undefined when unknown, expired, another client's, or already used. */
  async consume(kind: AuthorizationRequestKind, idHash: Buffer, clientId: string, now: Date): Promise<unknown> {
    const row = await this.db.updateTable('authorization_requests').set({ consumed_at: now })
      .where('id_hash', '=', idHash).where('kind', '=', kind).where('client_id', '=', clientId)
      .where('consumed_at', 'is', null).where('expires_at', '>', now)
      .returning('params')
      .executeTakeFirst();
    return row?.params;
  }

  async purgeExpired(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('authorization_requests').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
