import { clientHonours } from '../../oauth/client.js';
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import type { RefreshMetrics } from '../../platform/observability/refresh-metrics.js';
import { sha256 } from '../../platform/crypto.js';
import type { ClaimSource } from '../../oauth/claims.js';
import { idTokenUserClaims } from '../../oauth/claims.js';
import { narrowedAudience } from '../../oauth/audience.js';
import { AuthorizationPending, DeviceAccessDenied, ExpiredToken, InvalidGrant, InvalidRequest, InvalidTarget, SlowDown } from '../../oauth/errors.js';
import { mayIssueRefreshToken, startRefreshFamily, type RefreshTokenDeps } from '../../oauth/refresh-families/rotation.js';
import { tokenResponse, type GrantType, type TokenGrant } from '../../oauth/token-endpoint/grant.js';
import { assertIdTokenSignable, issueUserTokens, type TokenIssuingDeps } from '../../oauth/tokens.js';
import type { DeviceAuthorizationRepository } from './device-store.js';

/** RFC 8628 §3.4 grant type. Public clients may use it: a CLI or a TV keeps no secret (§5.6). */
export const DEVICE_CODE: GrantType = {
  grantType: 'urn:ietf:params:oauth:grant-type:device_code',
  publicClients: true,
};

/** A device code: 256 bits, base64url (RFC 8628 §5.2: high entropy; stored as SHA-256). */
export const DEVICE_CODE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * RFC 8628 §3.5 slow_down, decided in memory so an undecided poll costs one indexed read and no
 * write: a device that polls sooner than its interval gets slow_down and 5 more seconds of
 * interval, from then on. Kept per instance (a device alternating between instances is paced by
 * each); slow_down protects the server's load, it is no security boundary. Bounded: entries go
 * when their code expires, and at most `maxEntries` are kept (the oldest dropped first).
 */
export class PollPacer {
  private readonly devices = new Map<string, { lastPoll: number; interval: number; expires: number }>();
  constructor(private readonly maxEntries = 100_000) {}

  /** The answer to an undecided poll now, and the interval the device must keep. */
  poll(key: string, issuedInterval: number, expiresAt: Date, now: Date): { slowDown: boolean; interval: number } {
    const t = now.getTime();
    const seen = this.devices.get(key);
    let interval = seen?.interval ?? issuedInterval;
    const slowDown = seen !== undefined && t < seen.lastPoll + seen.interval * 1000;
    if (slowDown) interval += 5;
    this.devices.delete(key);
    this.devices.set(key, { lastPoll: t, interval, expires: expiresAt.getTime() });
    if (this.devices.size > this.maxEntries) this.prune(t);
    return { slowDown, interval };
  }

  private prune(t: number): void {
    for (const [key, entry] of this.devices) if (entry.expires <= t) this.devices.delete(key);
    // Still too many (all live): the least recently polled go; they poll again as if new.
    for (const key of this.devices.keys()) {
      if (this.devices.size <= this.maxEntries) break;
      this.devices.delete(key);
    }
  }
}

export type PollAnswer = 'issued' | 'authorization_pending' | 'slow_down' | 'access_denied' | 'expired_token' | 'invalid_grant' | 'invalid_target';

const RESOURCE_NOT_GRANTED = 'resource was not part of the device authorization request';

export interface DeviceGrantDeps extends TokenIssuingDeps {
  devices: DeviceAuthorizationRepository;
  users: { findById(id: string): Promise<(ClaimSource & { disabled: boolean }) | undefined> };
  refreshTokens: RefreshTokenDeps;
  /** latchkey_refresh_tokens_total{outcome="issued"}: a new family, as the authorization code grant counts it. */
  refreshMetrics: Pick<RefreshMetrics, 'refreshTokens'>;
  clock: Clock;
  /** Each poll's answer (latchkey_device_polls_total). */
  polled(answer: PollAnswer): void;
  pacer: PollPacer;
}

/**
 * RFC 8628 §3.4–3.5: the device polls with its device code. Until the person decides:
 * authorization_pending, or slow_down when it polls sooner than its interval (which then grows
 * by 5 seconds: PollPacer). Then access_denied, expired_token, or — exactly once — the tokens: an access
 * token, a refresh token (a new family) when the client may have one, an ID token when `openid`
 * was granted. A device code used after that is invalid_grant.
 */
export function deviceCodeGrant(deps: DeviceGrantDeps): TokenGrant<'device_code'> {
  return {
    ...DEVICE_CODE,
    parameters: ['device_code'],
    async handle({ client, params, resources, ip }) {
      const code = params.device_code;
      if (code === undefined) throw new InvalidRequest('device_code is required');
      const answer = async () => {
        if (!DEVICE_CODE_PATTERN.test(code)) throw new InvalidGrant('the device code is invalid');
        assertIdTokenSignable(deps.keys, client.metadata.id_token_signed_response_alg);
        const now = deps.clock.now();
        const hash = sha256(code);
        // RFC 8707 §2.2: the token request may narrow the audience, never name another resource.
        const poll = await deps.devices.poll(hash, client.clientId, now, resources);
        switch (poll.outcome) {
          case 'pending': {
            const paced = deps.pacer.poll(hash.toString('base64url'), poll.intervalSeconds, poll.expiresAt, now);
            if (paced.slowDown) throw new SlowDown(`polling too fast: wait at least ${paced.interval} seconds between requests`);
            throw new AuthorizationPending('the user has not yet approved this device');
          }
          case 'denied': throw new DeviceAccessDenied('the user denied this device');
          case 'expired': throw new ExpiredToken('the device code has expired; start again');
          case 'used': throw new InvalidGrant('the device code was already used');
          case 'unknown': throw new InvalidGrant('the device code is invalid, or was issued to another client');
          case 'resource_not_granted': throw new InvalidTarget(RESOURCE_NOT_GRANTED);
          case 'redeemed': break;
        }
        const a = poll.authorization;
        // A device authorized before its client's tokens were revoked (a leaked secret,
        // revoke-issued) must not mint tokens after the cutoff: the same rule as every token's.
        if (!clientHonours(client, Math.floor(a.created_at.getTime() / 1000))) {
          throw new InvalidGrant('the device code was issued before this client\'s tokens were revoked; start again');
        }
        const user = await deps.users.findById(a.user_id!);
        if (!user || user.disabled) throw new InvalidGrant('the user who approved this device is no longer active');
        const grantId = a.grant_id ?? randomUUID();
        const audience = a.audience as string | string[];
        const { accessToken, idToken } = await issueUserTokens(deps, {
          grantId, sub: a.user_id!, aud: narrowedAudience(resources, audience, RESOURCE_NOT_GRANTED), scope: a.scope,
          client: { clientId: client.clientId, accessTokenTtl: client.metadata.access_token_ttl, idTokenAlg: client.metadata.id_token_signed_response_alg },
          authTime: a.auth_time!, nonce: null, amr: a.amr ?? [], acr: a.acr, sid: a.sid!,
          idTokenClaims: idTokenUserClaims(user, a.scope.split(' '), { allScopeClaims: client.metadata.id_token_scope_claims === true }),
        });
        const family = mayIssueRefreshToken(client, a.scope)
          ? await startRefreshFamily(deps.refreshTokens, client, {
            id: grantId, userId: a.user_id!, scope: a.scope, audience, sid: a.sid!, authTime: a.auth_time!, amr: a.amr ?? [], acr: a.acr, ip,
          }, now)
          : undefined;
        if (family) deps.refreshMetrics.refreshTokens.inc({ outcome: 'issued' });
        return {
          response: tokenResponse(accessToken, a.scope, { refreshToken: family?.token, idToken }),
          issued: { sub: a.user_id!, scope: a.scope, jti: accessToken.jti },
          audit: [{ event: 'device.redeemed', fields: { client_id: client.clientId, sub: a.user_id, grant_id: grantId } }],
        };
      };
      try {
        const result = await answer();
        deps.polled('issued');
        return result;
      } catch (err) {
        const e = err as { error?: string };
        const label = e.error === 'authorization_pending' || e.error === 'slow_down' || e.error === 'access_denied' || e.error === 'expired_token' || e.error === 'invalid_grant' || e.error === 'invalid_target' ? e.error : undefined;
        if (label) deps.polled(label);
        throw err;
      }
    },
  };
}
