import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AddressClaim, Database, ProfileClaims, UsersTable } from '../platform/db/schema.js';

export type User = Selectable<UsersTable>;

export interface NewUser {
  username: string;
  email?: string | null;
  email_verified?: boolean;
  phone_number?: string | null;
  phone_number_verified?: boolean;
  profile?: ProfileClaims;
  address?: AddressClaim | null;
  password_hash?: string | null;
}

export class UserExists extends Error {}

/** The users aggregate. Look-ups by login name are case-insensitive (the unique indexes are on lower()). */
export class UserRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(input: NewUser, now: Date): Promise<User> {
    try {
      return await this.db.insertInto('users').values({
        id: randomUUID(),
        username: input.username,
        email: input.email ?? null,
        email_verified: input.email_verified ?? false,
        phone_number: input.phone_number ?? null,
        phone_number_verified: input.phone_number_verified ?? false,
        profile: JSON.stringify(input.profile ?? {}) as unknown as ProfileClaims,
        address: (input.address ? JSON.stringify(input.address) : null) as unknown as AddressClaim | null,
        password_hash: input.password_hash ?? null,
        created_at: now,
        updated_at: now,
      }).returningAll().executeTakeFirstOrThrow();
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new UserExists('a user with that username or email already exists');
      throw err;
    }
  }

  /** By username or email, case-insensitively (a login form accepts either). */
  async findByLogin(login: string): Promise<User | undefined> {
    const l = login.toLowerCase();
    return this.db.selectFrom('users').selectAll()
      .where((eb) => eb.or([eb(sql`lower(username)`, '=', l), eb(sql`lower(email)`, '=', l)]))
      .orderBy(sql`lower(username) = ${l}`, 'desc') // a username match wins over someone's email
      .limit(1)
      .executeTakeFirst();
  }

  async findById(id: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(): Promise<User[]> {
    return this.db.selectFrom('users').selectAll().orderBy(sql`lower(username)`).execute();
  }

  /**
   * One page of users ordered by lower(username) (unique), after `after` (keyset paging: a
   * page never skips or repeats a user whatever is created meanwhile). `q`: users whose
   * username or e-mail contains it, case-insensitively (strpos, so `%` and `_` are plain text).
   */
  async search(input: { q?: string | undefined; limit: number; after?: string | undefined }): Promise<User[]> {
    let query = this.db.selectFrom('users').selectAll();
    if (input.q !== undefined && input.q !== '') {
      const q = input.q.toLowerCase();
      query = query.where((eb) => eb.or([
        eb(sql`strpos(lower(username), ${q})`, '>', 0),
        eb(sql`strpos(lower(coalesce(email, '')), ${q})`, '>', 0),
      ]));
    }
    if (input.after !== undefined) query = query.where(sql`lower(username)`, '>', input.after.toLowerCase());
    return query.orderBy(sql`lower(username)`).limit(input.limit).execute();
  }

  async setPasswordHash(id: string, hash: string, now: Date): Promise<boolean> {
    const r = await this.db.updateTable('users').set({ password_hash: hash, updated_at: now }).where('id', '=', id).executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }

  /** Replaces the hash only if it is still the one that was verified (a concurrent password change wins). */
  async upgradePasswordHash(id: string, previous: string, hash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: hash }).where('id', '=', id).where('password_hash', '=', previous).execute();
  }

  async setDisabled(id: string, disabled: boolean, now: Date): Promise<boolean> {
    const r = await this.db.updateTable('users').set({ disabled, updated_at: now }).where('id', '=', id).executeTakeFirst();
    return r.numUpdatedRows === 1n;
  }
}
