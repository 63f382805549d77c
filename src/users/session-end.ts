import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Clock } from '../platform/clock.js';
import type { Database } from '../platform/db/schema.js';
import type { KeyRing } from '../platform/keys/keyring.js';
import type { OutboundFetcher } from '../platform/outbound/fetcher.js';
import type { Client } from '../oauth/client.js';
import { backchannelPost, notifyBackchannelLogout, type BackchannelLogoutDeps, type BackchannelResult } from '../oauth/backchannel-logout.js';
import type { AuditLog } from '../platform/observability/audit.js';
import { SessionClientRepository } from './session-clients-store.js';

/** A logout token is used at once: two minutes, the short life OWASP ASVS 10.5.5 recommends. */
const LOGOUT_TOKEN_TTL_SECONDS = 120;

export interface SessionEndNotifier {
  /**
   * An SSO session ended (sign-out, a new sign-in replacing it, its user disabled): its clients
   * are told (src/oauth/backchannel-logout.ts). The server does not wait for it; the promise
   * never rejects and says what each client answered.
   */
  sessionEnded(session: { sid: string; user_id: string }, fields: Record<string, string | undefined>): Promise<BackchannelResult[]>;
  /** Resolves when every notification under way has finished (shutdown, tests). */
  idle(): Promise<void>;
}

export interface SessionEndParts {
  keys: KeyRing;
  clock: Clock;
  issuer: string;
  db: Kysely<Database>;
  clients: { get(clientId: string): Promise<Client | undefined> };
  audit: AuditLog;
  logger: Logger;
  /** The outbound fetcher the logout tokens are posted through. */
  outbound: Pick<OutboundFetcher, 'fetch'>;
  /** BACKCHANNEL_LOGOUT_TIMEOUT, seconds. */
  timeoutSeconds: number;
  /** latchkey_backchannel_logouts_total, where there is a metrics registry (the server). */
  outcomes?: Counter<'outcome'>;
}

/** Back-Channel Logout wired to the store, the audit trail and (in the server) the metric. */
export function createSessionEndNotifier(parts: SessionEndParts): SessionEndNotifier {
  const { audit, logger } = parts;
  const deps: BackchannelLogoutDeps = {
    keys: parts.keys,
    clock: parts.clock,
    issuer: parts.issuer,
    clients: parts.clients,
    sessionClients: new SessionClientRepository(parts.db),
    post: backchannelPost(parts.outbound, parts.timeoutSeconds * 1000),
    tokenTtl: LOGOUT_TOKEN_TTL_SECONDS,
  };
  const pending = new Set<Promise<unknown>>();

  return {
    sessionEnded(session, fields) {
      const run = notifyBackchannelLogout({ sid: session.sid, sub: session.user_id }, deps)
        .then((results) => {
          for (const r of results) {
            parts.outcomes?.inc({ outcome: r.outcome });
            audit.record('logout.backchannel', { client_id: r.clientId, sub: session.user_id, sid: session.sid, outcome: r.outcome, detail: r.detail, ...fields });
          }
          return results;
        })
        .catch((err: unknown) => {
          logger.error({ err: { message: (err as Error)?.message }, sid: session.sid }, 'back-channel logout could not run');
          return [];
        })
        .finally(() => { pending.delete(run); });
      pending.add(run);
      return run;
    },
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

/** The server's notifier: with its metric (latchkey_backchannel_logouts_total). */
export function serverSessionEndNotifier(parts: Omit<SessionEndParts, 'outcomes'> & { registry: Registry }): SessionEndNotifier {
  const outcomes = new Counter({
    name: 'latchkey_backchannel_logouts_total',
    help: 'Logout tokens posted to clients\' backchannel_logout_uri (OpenID Connect Back-Channel Logout), by outcome.',
    labelNames: ['outcome'] as const,
    registers: [parts.registry],
  });
  return createSessionEndNotifier({ ...parts, outcomes });
}
