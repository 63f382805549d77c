import type { Migration } from '../src/platform/db/migrator.js';
import { signingKeys } from './0001_signing_keys.js';
import { migration as clients } from './0002_clients.js';
import { migration as tokenRevocations } from './0003_token_revocations.js';
import { migration as clientAssertionJtis } from './0004_client_assertion_jtis.js';
import { users } from './0010_users.js';
import { sessions } from './0011_sessions.js';
import { consents } from './0012_consents.js';
import { auditEvents } from './0013_audit_events.js';
import { authorization } from './0014_authorization.js';
import { refreshTokens } from './0015_refresh_tokens.js';
import { sessionClients } from './0016_session_clients.js';
import { sessionFactors } from './0020_session_factors.js';
import { trustedIssuers } from './0023_trusted_issuers.js';
import { auditSearch } from './0024_audit_search.js';
import { clientTokenCutoff } from './0025_client_token_cutoff.js';
import { refreshFamilyActivity } from './0026_refresh_family_activity.js';

/**
 * Every migration, in order. A migration is never edited once released: change the schema with
 * a new one. Each file exports `up(db)`; the names are the order.
 */
export const migrations: readonly Migration[] = [
  signingKeys,
  clients,
  tokenRevocations,
  clientAssertionJtis,
  users,
  sessions,
  consents,
  auditEvents,
  authorization,
  refreshTokens,
  sessionClients,
  sessionFactors,
  trustedIssuers,
  auditSearch,
  clientTokenCutoff,
  refreshFamilyActivity,
];
