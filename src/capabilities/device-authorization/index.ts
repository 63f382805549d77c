import { Counter } from 'prom-client';
import { sql } from 'kysely';
import type { Capability } from '../../server/context.js';
import { DEVICE_CODE, deviceCodeGrant, PollPacer, type PollAnswer } from './device-grant.js';
import { DeviceAuthorizationRepository } from './device-store.js';
import { deviceAuthorizations } from './migrations.js';
import { deviceRoutes } from './routes.js';
import { deviceAuthorizationSettings } from './settings.js';

/** The device authorization grant (RFC 8628): sign in on a TV, a CLI or an SSH session by a code entered elsewhere. */
export const deviceAuthorization: Capability = {
  name: 'device-authorization',
  settings: deviceAuthorizationSettings,
  grantTypes: [DEVICE_CODE],
  migrations: [deviceAuthorizations],
  register(ctx) {
    const { services, config } = ctx;
    const devices = new DeviceAuthorizationRepository(ctx.store.db);
    const registers = [ctx.metrics.registry];
    const outcomes = new Counter({
      name: 'latchkey_device_authorizations_total',
      help: 'Device authorizations (RFC 8628) by outcome: issued (POST /device_authorization), approved, denied (by the person on /device). Expired ones are those issued and never redeemed (see latchkey_device_polls_total{answer="expired_token"}).',
      labelNames: ['outcome'], registers,
    });
    const polls = new Counter({
      name: 'latchkey_device_polls_total',
      help: 'Device code polls of /token by answer: issued, authorization_pending, slow_down, access_denied, expired_token, invalid_grant, invalid_target (a resource not granted, RFC 8707 §2.2).',
      labelNames: ['answer'], registers,
    });
    return {
      grants: [deviceCodeGrant({
        ...services.tokenIssuing, devices, users: services.users, refreshTokens: services.refreshTokens, refreshMetrics: services.refreshMetrics, clock: ctx.clock,
        polled: (answer: PollAnswer) => polls.inc({ answer }), pacer: new PollPacer(),
      })],
      routes: [deviceRoutes(ctx, devices, outcomes)],
      // RFC 8628 §4
      discovery: () => ({ device_authorization_endpoint: `${config.issuer}/device_authorization` }),
      cleanup: [{
        // An expired device code answers nothing but invalid_grant once gone; its user code is free again.
        name: 'device_authorizations',
        batch: (now, n) => sql`delete from device_authorizations where device_code_hash in (
          select device_code_hash from device_authorizations where expires_at < ${now} limit ${n} for update skip locked)`,
      }],
    };
  },
};
