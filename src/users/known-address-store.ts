import type { Kysely } from 'kysely';
import type { Database } from '../platform/db/schema.js';

/**
 * The addresses each account signed in from (as every limit counts an address: an IPv6 one by
 * its /64, src/platform/fixed-window.ts), with the time of the last success from each: an attempt
 * from such an address counts against an allowance of its own in the sign-in throttle.
 */
export class KnownAddressRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Whether `userId` signed in successfully from `address` at or after `since`. */
  async isKnown(userId: string, address: string, since: Date): Promise<boolean> {
    const row = await this.db.selectFrom('known_sign_in_addresses').select('user_id')
      .where('user_id', '=', userId).where('address', '=', address).where('last_signed_in_at', '>=', since)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Records a successful sign-in of `userId` from `address` (one upsert). */
  async remember(userId: string, address: string, now: Date): Promise<void> {
    await this.db.insertInto('known_sign_in_addresses')
      .values({ user_id: userId, address, last_signed_in_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'address']).doUpdateSet({ last_signed_in_at: now }))
      .execute();
  }
}
