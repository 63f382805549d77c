import type { Client } from '../client.js';
import type { MappedPrincipal } from './external-token.js';

/**
 * What a token issued for a principal an external issuer's subject mapping named says of it —
 * one rule for the JWT bearer grant and token exchange. A client is its client_id. A user is
 * their id, marked `sub_kind: user`: such a token comes from no Latchkey grant, so it carries no
 * `gid`, yet introspection and UserInfo must still treat it as a user's token and check the user
 * is active (namesUser, src/oauth/access-token-liveness.ts). A made-up gid would name a grant
 * nobody could revoke.
 */
export function principalSubject(principal: MappedPrincipal): { sub: string; claims: Record<string, unknown> } {
  return principal.kind === 'user' ? { sub: principal.userId, claims: { sub_kind: 'user' } } : { sub: principal.clientId, claims: {} };
}

/** Whether tokens may be issued for a mapped principal now: a user that exists and is enabled, a client that exists and is enabled. */
export async function principalActive(
  principal: MappedPrincipal,
  deps: { userActive(userId: string): Promise<boolean>; clients: { get(clientId: string): Promise<Client | undefined> } },
): Promise<boolean> {
  if (principal.kind === 'user') return deps.userActive(principal.userId);
  const client = await deps.clients.get(principal.clientId);
  return client !== undefined && !client.disabled;
}
