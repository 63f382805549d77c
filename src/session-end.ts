import { Counter } from 'prom-client';
import type { AppContext } from './app.js';
import type { Client } from './oauth/client.js';
import { backchannelPost, notifyBackchannelLogout, type BackchannelLogoutDeps } from './oauth/backchannel-logout.js';
import { SessionClientRepository } from './store/session-clients.js';

/** A logout token is used at once: two minutes, the short life OWASP ASVS 10.5.5 recommends. */
const LOGOUT_TOKEN_TTL_SECONDS = 120;

export interface SessionEndNotifier {
  /**
   * An SSO session ended (sign-out, or a new sign-in replacing it): its clients are told in the
   * background (src/oauth/backchannel-logout.ts); the response that ended it does not wait.
   */
  sessionEnded(session: { sid: string; user_id: string }, fields: Record<string, string | undefined>): void;
  /** Resolves when every notification under way has finished (shutdown, tests). */
  idle(): Promise<void>;
}

/** Wires Back-Channel Logout to the store, metrics and audit trail; registers its discovery members. */
export function createSessionEndNotifier(context: AppContext, clients: { get(clientId: string): Promise<Client | undefined> }): SessionEndNotifier {
  const { config, audit, logger } = context;
  const outcomes = new Counter({
    name: 'latchkey_backchannel_logouts_total',
    help: 'Logout tokens posted to clients\' backchannel_logout_uri (OpenID Connect Back-Channel Logout), by outcome.',
    labelNames: ['outcome'],
    registers: [context.metrics.registry],
  });
  context.discovery.contribute(() => ({ backchannel_logout_supported: true, backchannel_logout_session_supported: true }));
  const deps: BackchannelLogoutDeps = {
    keys: context.keys,
    clock: context.clock,
    issuer: config.issuer,
    clients,
    sessionClients: new SessionClientRepository(context.store.db),
    post: backchannelPost(config.backchannelLogoutTimeout * 1000),
    tokenTtl: LOGOUT_TOKEN_TTL_SECONDS,
  };
  const pending = new Set<Promise<void>>();

  return {
    sessionEnded(session, fields) {
      const run = notifyBackchannelLogout({ sid: session.sid, sub: session.user_id }, deps)
        .then((results) => {
          for (const r of results) {
            outcomes.inc({ outcome: r.outcome });
            audit.record('logout.backchannel', { client_id: r.clientId, sub: session.user_id, sid: session.sid, outcome: r.outcome, detail: r.detail, ...fields });
          }
        })
        .catch((err: unknown) => { logger.error({ err: { message: (err as Error)?.message }, sid: session.sid }, 'back-channel logout could not run'); })
        .finally(() => { pending.delete(run); });
      pending.add(run);
    },
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
