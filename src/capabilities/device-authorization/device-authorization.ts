import { authenticateClient, type ClientAuthDeps, type ClientAuthInput } from '../../oauth/client-auth/authenticate.js';
import type { Client } from '../../oauth/client.js';
import { resolveAudience } from '../../oauth/audience.js';
import { InvalidRequest, TemporarilyUnavailable, UnauthorizedClient } from '../../oauth/errors.js';
import { readParams, readRepeatedParam } from '../../oauth/params.js';
import { grantedScope } from '../../oauth/scope.js';
import type { Clock } from '../../platform/clock.js';
import { randomToken, sha256 } from '../../platform/crypto.js';
import { DEVICE_CODE } from './device-grant.js';
import type { DeviceAuthorizationRepository } from './device-store.js';
import { displayUserCode, newUserCode } from './user-code.js';

export interface DeviceAuthorizationDeps extends ClientAuthDeps {
  devices: DeviceAuthorizationRepository;
  clock: Clock;
  issuer: string;
  /** The verification page (RFC 8628 §3.2 verification_uri). */
  verificationUri: string;
  ttlSeconds: number;
  intervalSeconds: number;
}

/** RFC 8628 §3.2: the device authorization response. */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/**
 * POST /device_authorization (RFC 8628 §3.1–3.2): the client authenticates as at /token (a
 * public client by its client_id), must be registered for the device grant, and asks for a
 * scope and resources checked as at /authorize; it gets a device code (256 bits, stored as
 * SHA-256) to poll with and a user code for the person.
 */
export async function authorizeDevice(input: ClientAuthInput, deps: DeviceAuthorizationDeps): Promise<{ client: Client; scope: string; response: DeviceAuthorizationResponse }> {
  const { client } = await authenticateClient(input, deps, { allowPublic: true });
  const p = readParams(input.body, ['client_id', 'scope']);
  if (p.client_id !== undefined && p.client_id !== client.clientId) throw new InvalidRequest('client_id does not match the authenticated client');
  if (!(client.metadata.grant_types as readonly string[]).includes(DEVICE_CODE.grantType)) {
    throw new UnauthorizedClient('this client is not registered for the device authorization grant (RFC 8628)');
  }
  // RFC 8628 §3.1: scope as RFC 6749 §3.3; RFC 8707 resource as at the authorization endpoint.
  const scope = grantedScope(p.scope, client);
  const audience = resolveAudience(readRepeatedParam(input.body, 'resource'), client, deps.issuer);
  const now = deps.clock.now();
  // A user code is 34.6 bits: a clash with a live one is rare, but possible; draw again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const deviceCode = randomToken();
    const userCode = newUserCode();
    if (await deps.devices.create({ deviceCodeHash: sha256(deviceCode), userCode, clientId: client.clientId, scope, audience, intervalSeconds: deps.intervalSeconds }, now, deps.ttlSeconds)) {
      const shown = displayUserCode(userCode);
      return {
        client, scope,
        response: {
          device_code: deviceCode,
          user_code: shown,
          verification_uri: deps.verificationUri,
          verification_uri_complete: `${deps.verificationUri}?user_code=${shown}`,
          expires_in: deps.ttlSeconds,
          interval: deps.intervalSeconds,
        },
      };
    }
  }
  throw new TemporarilyUnavailable('no free user code could be drawn; retry');
}
