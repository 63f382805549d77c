import { z } from 'zod';
import { defineSlice, setting, type SliceValues } from '../../platform/config/settings.js';

/** Trusted external issuers (src/oauth/trusted-issuers/): the start-up file. */
export const trustedIssuerSettings = defineSlice({
  name: 'trusted_issuers',
  settings: {
    trustedIssuersFile: setting('TRUSTED_ISSUERS_FILE', z.string().min(1).optional().describe('Path of a JSON or YAML file of trusted external issuers (`issuers:` list) upserted at start-up; issuers not in it are left alone.')),
  },
});
export type TrustedIssuerSettings = SliceValues<typeof trustedIssuerSettings>;
