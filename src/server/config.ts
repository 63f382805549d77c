import { adminSettings } from '../capabilities/admin/settings.js';
import { authorizationCodeSettings } from '../capabilities/authorization-code/settings.js';
import { demoSettings } from '../capabilities/demo/settings.js';
import { introspectionSettings } from '../capabilities/introspection/settings.js';
import { loginSettings } from '../capabilities/login/settings.js';
import { mfaSettings } from '../capabilities/mfa/settings.js';
import { deviceAuthorizationSettings } from '../capabilities/device-authorization/settings.js';
import { logoutSettings } from '../capabilities/logout/settings.js';
import { refreshTokenSettings } from '../capabilities/refresh-token/settings.js';
import { registrationSettings } from '../capabilities/registration/settings.js';
import { revocationSettings } from '../capabilities/revocation/settings.js';
import { tokenExchangeSettings } from '../capabilities/token-exchange/settings.js';
import { userinfoSettings } from '../capabilities/userinfo/settings.js';
import { clientKeySettings } from '../oauth/client-auth/settings.js';
import { trustedIssuerSettings } from '../oauth/trusted-issuers/settings.js';
import { clientSettings } from '../oauth/clients/settings.js';
import { tokenSettings } from '../oauth/settings.js';
import { httpSettings, rateLimitSettings } from '../platform/config/core-settings.js';
import { composeSlices, type ComposedValues, type ConfigDocumentationRow } from '../platform/config/settings.js';
import { cleanupSettings, databaseSettings } from '../platform/db/settings.js';
import { keySettings } from '../platform/keys/settings.js';
import { outboundSettings } from '../platform/outbound/settings.js';
import { auditSettings, loggingSettings, metricsSettings } from '../platform/observability/settings.js';
import { passwordSettings } from '../users/settings.js';

export { ConfigError, parseDurationSeconds } from '../platform/config/settings.js';

/**
 * The whole configuration of a Latchkey process: every slice, once. Each slice declares its
 * environment variables beside the code they configure; this order is the order of
 * `latchkey config` and of the README table (test/unit/config.test.ts keeps the two in step),
 * and a slice whose check reads another's values comes after it.
 */
export const SLICES = [
  httpSettings,
  databaseSettings,
  keySettings,
  loggingSettings,
  auditSettings,
  metricsSettings,
  rateLimitSettings,
  cleanupSettings,
  outboundSettings,
  clientSettings,
  clientKeySettings,
  trustedIssuerSettings,
  tokenSettings,
  passwordSettings,
  authorizationCodeSettings,
  deviceAuthorizationSettings,
  refreshTokenSettings,
  tokenExchangeSettings,
  loginSettings,
  mfaSettings,
  logoutSettings,
  userinfoSettings,
  introspectionSettings,
  revocationSettings,
  registrationSettings,
  adminSettings,
  demoSettings,
] as const;

const composed = composeSlices(SLICES);

/** Every setting by its camelCase name, typed from the slices' schemas. */
export type Config = ComposedValues<typeof SLICES>;

/** Reads the configuration from an environment; throws ConfigError listing every problem, one per line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  return composed.load(env);
}

/** The documentation rows of the configuration, for `latchkey config` and the README table. */
export function configDocumentation(): ConfigDocumentationRow[] {
  return composed.documentation();
}
