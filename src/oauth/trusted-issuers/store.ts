import type { Kysely, Selectable } from 'kysely';
import type { Notifier } from '../../platform/db/database.js';
import type { Database, TrustedIssuersTable } from '../../platform/db/schema.js';
import { trustedIssuerSchema, type TrustedIssuerConfig } from './issuer-config.js';

/** The LISTEN/NOTIFY channel on which every change to a trusted issuer is announced (payload: its name). */
export const TRUSTED_ISSUERS_CHANNEL = 'trusted_issuers';

export interface StoredTrustedIssuer {
  config: TrustedIssuerConfig;
  createdAt: Date;
  updatedAt: Date;
}

/** What an insert or update met instead of writing: the name or the issuer is another's. */
export type TrustedIssuerWrite = { ok: true; stored: StoredTrustedIssuer } | { ok: false; conflict: 'name' | 'issuer' } | { ok: false; conflict: 'missing' };

/**
 * The trusted_issuers table. Every write is one statement and, once committed, is announced on
 * the `trusted_issuers` channel so each instance reloads its verifier (external-tokens.ts).
 */
export class TrustedIssuerRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly notifier: Notifier,
    /** Called at once for a change made through this repository, before the NOTIFY reaches the other instances. */
    private readonly onChange?: (name: string) => void | Promise<void>,
  ) {}

  private async changed(name: string): Promise<void> {
    await this.onChange?.(name);
    await this.notifier.notify(TRUSTED_ISSUERS_CHANNEL, name);
  }

  async list(): Promise<StoredTrustedIssuer[]> {
    const rows = await this.db.selectFrom('trusted_issuers').selectAll().orderBy('name').execute();
    return rows.map(toStored);
  }

  async find(name: string): Promise<StoredTrustedIssuer | undefined> {
    const row = await this.db.selectFrom('trusted_issuers').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toStored(row) : undefined;
  }

  /** Inserts a new issuer; a taken name or issuer is a conflict, nothing written. */
  async insert(config: TrustedIssuerConfig): Promise<TrustedIssuerWrite> {
    const taken = await this.db.selectFrom('trusted_issuers').select(['name', 'issuer'])
      .where((eb) => eb.or([eb('name', '=', config.name), eb('issuer', '=', config.issuer)])).executeTakeFirst();
    if (taken) return { ok: false, conflict: taken.name === config.name ? 'name' : 'issuer' };
    // The unique constraints still decide a race between two inserts.
    const row = await this.db.insertInto('trusted_issuers')
      .values({ name: config.name, issuer: config.issuer, config: JSON.stringify(config) })
      .onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
    if (!row) return { ok: false, conflict: 'name' };
    await this.changed(config.name);
    return { ok: true, stored: toStored(row) };
  }

  /** Replaces an issuer's declaration (its name stays). */
  async update(config: TrustedIssuerConfig): Promise<TrustedIssuerWrite> {
    const other = await this.db.selectFrom('trusted_issuers').select('name')
      .where('issuer', '=', config.issuer).where('name', '!=', config.name).executeTakeFirst();
    if (other) return { ok: false, conflict: 'issuer' };
    const row = await this.db.updateTable('trusted_issuers')
      .set({ issuer: config.issuer, config: JSON.stringify(config), updated_at: new Date() })
      .where('name', '=', config.name).returningAll().executeTakeFirst();
    if (!row) return { ok: false, conflict: 'missing' };
    await this.changed(config.name);
    return { ok: true, stored: toStored(row) };
  }

  async delete(name: string): Promise<StoredTrustedIssuer | undefined> {
    const row = await this.db.deleteFrom('trusted_issuers').where('name', '=', name).returningAll().executeTakeFirst();
    if (row) await this.changed(name);
    return row ? toStored(row) : undefined;
  }
}

function toStored(row: Selectable<TrustedIssuersTable>): StoredTrustedIssuer {
  const raw = typeof row.config === 'string' ? JSON.parse(row.config) as unknown : row.config;
  // Parsed again: the defaults of a newer schema apply to an older row.
  return { config: trustedIssuerSchema.parse(raw), createdAt: row.created_at, updatedAt: row.updated_at };
}
