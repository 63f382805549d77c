import { admin } from '../capabilities/admin/index.js';
import { authorizationCode } from '../capabilities/authorization-code/index.js';
import { clientCredentials } from '../capabilities/client-credentials/index.js';
import { demo } from '../capabilities/demo/index.js';
import { deviceAuthorization } from '../capabilities/device-authorization/index.js';
import { introspection } from '../capabilities/introspection/index.js';
import { jwtBearer } from '../capabilities/jwt-bearer/index.js';
import { login } from '../capabilities/login/index.js';
import { logout } from '../capabilities/logout/index.js';
import { mfa } from '../capabilities/mfa/index.js';
import { refreshToken } from '../capabilities/refresh-token/index.js';
import { registration } from '../capabilities/registration/index.js';
import { revocation } from '../capabilities/revocation/index.js';
import { tokenExchange } from '../capabilities/token-exchange/index.js';
import { trustedIssuers } from '../capabilities/trusted-issuers/index.js';
import { userInfo } from '../capabilities/userinfo/index.js';
import { GrantTypeRegistry } from '../oauth/token-endpoint/registry.js';
import type { Migration } from '../platform/db/migrator.js';
import { migrations as released } from '../../migrations/index.js';
import type { Capability } from './context.js';

/**
 * THE table: one line per capability, in the order they register (discovery arrays and
 * grant_types_supported keep it). A new capability is a folder under src/capabilities/ and a
 * line here.
 */
export const CAPABILITIES: readonly Capability[] = [
  authorizationCode,
  userInfo,
  refreshToken,
  clientCredentials,
  tokenExchange,
  jwtBearer,
  deviceAuthorization,
  introspection,
  revocation,
  registration,
  admin,
  trustedIssuers,
  login,
  mfa,
  logout,
  demo,
];

/**
 * The grant types clients may register for and /token serves, from the table: client
 * validation (server, CLI, bootstrap file), discovery and the token endpoint read this one registry.
 */
export const GRANT_TYPES = new GrantTypeRegistry(CAPABILITIES.flatMap((c) => c.grantTypes ?? []));

/**
 * Every migration: the released ones (migrations/) and each capability's own, in name order
 * (a name twice is a mistake caught at start, not a table created twice).
 */
export const MIGRATIONS: readonly Migration[] = (() => {
  const all = [...released, ...CAPABILITIES.flatMap((c) => c.migrations ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const twice = all.find((m, i) => i > 0 && all[i - 1]!.name === m.name);
  if (twice) throw new Error(`migration ${twice.name} is declared twice`);
  return all;
})();
