import type { Migration } from '../src/db/migrator.js';
import { migration as clients } from './0002_clients.js';
import { migration as tokenRevocations } from './0003_token_revocations.js';
import { migration as clientAssertionJtis } from './0004_client_assertion_jtis.js';

/**
 * Every migration, in order. A migration is never edited once released: change the schema with
 * a new one. Each file exports `up(db)`; the names are the order.
 */
export const migrations: readonly Migration[] = [
  clients,
  tokenRevocations,
  clientAssertionJtis,
];
