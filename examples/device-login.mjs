#!/usr/bin/env node
// Signs in to Latchkey from a terminal with the device flow (RFC 8628), using openid-client 6:
// prints a URL and a code, waits while you approve in a browser, then prints who signed in.
//
//   LATCHKEY_ISSUER=https://id.example.com LATCHKEY_CLIENT_ID=my-cli node examples/device-login.mjs
//
// The client: public (token_endpoint_auth_method none), registered with grant_types
// ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"] and scope
// "openid profile offline_access". Run by test/compat/device.test.ts.
import * as client from 'openid-client';

const issuer = new URL(process.env.LATCHKEY_ISSUER ?? 'http://localhost:8080');
const clientId = process.env.LATCHKEY_CLIENT_ID ?? 'latchkey-cli';
// openid-client refuses http unless told: allow it for a development issuer only.
const execute = issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [];

const config = await client.discovery(issuer, clientId, undefined, client.None(), { execute });
const device = await client.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' });

console.log(`To sign in, open ${device.verification_uri} and enter the code ${device.user_code}`);
console.log(`or open ${device.verification_uri_complete}`);

try {
  // Polls /token every `interval` seconds until you allow or deny, or the code expires.
  const tokens = await client.pollDeviceAuthorizationGrant(config, device);
  const { sub, preferred_username: name } = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  console.log(`signed in as ${sub}${name ? ` (${name})` : ''}`);
  // Keep tokens.refresh_token (e.g. in the OS keychain): client.refreshTokenGrant(config, it) renews the access token.
} catch (err) {
  // access_denied: you pressed Deny. expired_token: nobody approved in time — though openid-client
  // itself stops polling after expires_in, usually first (a ClientError, code OAUTH_TIMEOUT).
  const reason = err.error ?? (err.code === 'OAUTH_TIMEOUT' ? 'timed out: the code expired' : err.message);
  console.error(`not signed in: ${reason}`);
  process.exitCode = 1;
}
