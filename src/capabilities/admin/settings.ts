import { defineSlice, optionalNamedCredentialList, setting } from '../../platform/config/settings.js';

/** The admin API under /admin. */
export const adminSettings = defineSlice({
  name: 'admin',
  settings: {
    adminTokens: setting('ADMIN_TOKENS', optionalNamedCredentialList.describe('Bearer credentials of the admin API under /admin, comma-separated `name:secret` (secret ≥ 32 characters; the name is what the audit trail records for each call, e.g. ops-alice:… ; a bare secret is named token-<hash prefix>). Unset: the admin API is off (404).')),
  },
});
