import { boolean, defineSlice, optionalNamedCredentialList, setting } from '../../platform/config/settings.js';

/** The admin API under /admin. */
export const adminSettings = defineSlice({
  name: 'admin',
  settings: {
    adminTokens: setting('ADMIN_TOKENS', optionalNamedCredentialList.describe('Bearer credentials of the admin API under /admin, comma-separated `name:secret` (secret ≥ 32 characters; the name is what the audit trail records for each call, e.g. ops-alice:… ; a bare secret is named token-<hash prefix>). Unset: the admin API is off (404) over HTTP.')),
    adminSocket: setting('ADMIN_SOCKET', boolean.default(true).describe('Embedded store only (no DATABASE_URL): also serve the admin API on the Unix socket DATA_DIR/admin.sock (mode 0600, removed at stop), where a request needs no bearer: the file\'s permissions are its authentication, and the audit trail names it `local-socket`. The CLI uses it to act on a running embedded server. `false`: no socket.')),
  },
});
