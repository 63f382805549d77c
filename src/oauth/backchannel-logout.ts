import type { OutboundFetcher } from '../platform/outbound/fetcher.js';
import type { Client } from './client.js';
import { issueLogoutToken, type AccessTokenDeps } from './tokens.js';

/**
 * OpenID Connect Back-Channel Logout 1.0: when an SSO session ends, every client with a
 * `backchannel_logout_uri` that took part in it (it was issued a code in that session, §2.3)
 * gets a logout token by a direct form POST (§2.5), through the outbound fetcher (its address
 * rules, no redirects). One attempt each, at once and in parallel, within a time limit; a 2xx
 * answer is delivered (§2.8 asks for 200, and some frameworks answer 204), anything else
 * failed. Nothing here ever fails the sign-out.
 */

export interface BackchannelLogoutDeps extends AccessTokenDeps {
  clients: { get(clientId: string): Promise<Client | undefined> };
  /** The clients recorded for a session, removed as they are read (src/users/session-clients-store.ts). */
  sessionClients: { take(sid: string): Promise<string[]> };
  /** Posts the form and resolves with the HTTP status; rejects, saying why in a few safe words, when there is none. */
  post(url: string, form: URLSearchParams): Promise<number>;
  /** Lifetime of a logout token, in seconds. */
  tokenTtl: number;
}

export type BackchannelOutcome = 'delivered' | 'failed';

export interface BackchannelResult {
  clientId: string;
  outcome: BackchannelOutcome;
  /** The HTTP status the client answered, or why there was none. */
  detail: string;
}

/** Tells the clients of session `sid` (user `sub`) that it ended; resolves once each has answered or failed. */
export async function notifyBackchannelLogout(session: { sid: string; sub: string }, deps: BackchannelLogoutDeps): Promise<BackchannelResult[]> {
  const clientIds = await deps.sessionClients.take(session.sid);
  const results = await Promise.all(clientIds.map(async (clientId): Promise<BackchannelResult | undefined> => {
    const client = await deps.clients.get(clientId);
    const uri = client?.metadata.backchannel_logout_uri;
    // Unregistered since, or disabled: nobody to tell.
    if (!client || client.disabled || !uri) return undefined;
    try {
      const token = issueLogoutToken(deps, { clientId, sub: session.sub, sid: session.sid, alg: client.metadata.id_token_signed_response_alg, ttl: deps.tokenTtl });
      const status = await deps.post(uri, new URLSearchParams({ logout_token: token }));
      return { clientId, outcome: status >= 200 && status < 300 ? 'delivered' : 'failed', detail: `HTTP ${status}` };
    } catch (err) {
      // The fetcher's reasons are short and safe: timeout, ECONNREFUSED, refused: …, redirect not followed (HTTP 302).
      return { clientId, outcome: 'failed', detail: String((err as Error)?.message ?? err).slice(0, 200) };
    }
  }));
  return results.filter((r): r is BackchannelResult => r !== undefined);
}

/** §2.5: the POST itself, through the outbound fetcher: `timeoutMs` in all, the answer's body never read. */
export function backchannelPost(fetcher: Pick<OutboundFetcher, 'fetch'>, timeoutMs: number): BackchannelLogoutDeps['post'] {
  return async (url, form) => {
    const res = await fetcher.fetch({
      url, purpose: 'backchannel_logout', method: 'POST', body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' }, timeoutMs,
    });
    return res.status;
  };
}
