import { sql, type Kysely } from 'kysely';
import type { Migration } from '../src/platform/db/migrator.js';

/**
 * What each session proved and what it must prove (src/users/assurance.ts): the time each
 * factor was last proved, and the level the account needed when it signed in (its MFA policy).
 * A session below its required level is a sign-in still in progress, not a signed-in browser.
 */
export const sessionFactors: Migration = {
  name: '0020_session_factors',
  async up(db: Kysely<any>) {
    await db.schema.alterTable('sessions')
      .addColumn('factor_times', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
      .execute();
    await db.schema.alterTable('sessions').addColumn('required_acr', 'text').execute();
  },
};
