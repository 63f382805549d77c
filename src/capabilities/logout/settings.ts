import { defineSlice, duration, setting } from '../../platform/config/settings.js';

/** Back-channel logout. */
export const logoutSettings = defineSlice({
  name: 'logout',
  settings: {
    backchannelLogoutTimeout: setting('BACKCHANNEL_LOGOUT_TIMEOUT', duration(1, 60).default(5).describe('How long a client\'s backchannel_logout_uri has to answer a logout token (OpenID Connect Back-Channel Logout); one attempt, not retried.')),
  },
});
