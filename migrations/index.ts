import type { Migration } from '../src/db/migrator.js';
import { signingKeys } from './0001_signing_keys.js';

/**
 * Every migration, in order. A migration is never edited once released: change the schema with
 * a new one. Each file exports `up(db)`; the names are the order.
 */
export const migrations: readonly Migration[] = [
  signingKeys,
];
