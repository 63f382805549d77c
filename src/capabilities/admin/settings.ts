import { defineSlice, optionalCredentialList, setting } from '../../platform/config/settings.js';

/** The admin API under /admin. */
export const adminSettings = defineSlice({
  name: 'admin',
  settings: {
    adminTokens: setting('ADMIN_TOKENS', optionalCredentialList.describe('Bearer credential(s) of the admin API under /admin, comma-separated, each ≥ 32 characters. Unset: the admin API is off (404).')),
  },
});
