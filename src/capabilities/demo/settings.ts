import { boolean, defineSlice, setting } from '../../platform/config/settings.js';

/** The demo user, client and try-it page. */
export const demoSettings = defineSlice({
  name: 'demo',
  settings: {
    demo: setting('DEMO', boolean.default(true).describe('Embedded store with a loopback ISSUER (localhost, 127.0.0.1, [::1]) only: on the very first start (no users, no clients) create a demo user (password printed once) and the public demo client, and serve the try-it page at /try while that client exists.')),
  },
});
