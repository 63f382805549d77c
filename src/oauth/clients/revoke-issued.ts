import type { AuditLog } from '../../platform/observability/audit.js';
import type { Client } from '../client.js';
import type { FamilyRevocation } from '../refresh-families/revocation.js';
import type { ClientRegistry } from './registry.js';

export interface RevokeIssuedDeps {
  registry: Pick<ClientRegistry, 'setTokenCutoff'>;
  families: Pick<FamilyRevocation, 'revokeFamilies'>;
  audit: AuditLog;
  /** Counts each cutoff set (the server's registry; the CLI's is its own). */
  onRevoked?: () => void;
}

export interface RevokedIssued {
  client: Client;
  /** Every access token of the client with an `iat` before this is inactive. */
  cutoff: Date;
  /** Refresh token families revoked (each with its access tokens). */
  families: number;
}

/**
 * The leaked-secret runbook's "nothing issued before now survives": the client's cutoff is set
 * (one conditional UPDATE, announced so every instance's client cache reloads it), so each of its
 * access tokens issued before it — client_credentials tokens included, which name no grant —
 * becomes inactive at introspection, UserInfo and token exchange, and stays so when the client
 * is disabled and enabled again; then every refresh family of the client is revoked (one
 * statement, FamilyRevocation), so no refresh token issued before it can mint a new one. One
 * audit event, `client.tokens_revoked`, with the cutoff, the reason and who acted.
 */
export async function revokeIssuedTokens(
  deps: RevokeIssuedDeps, clientId: string, reason: string, actor: { by: string; [field: string]: unknown },
): Promise<RevokedIssued> {
  const client = await deps.registry.setTokenCutoff(clientId);
  const cutoff = client.tokensNotBefore!;
  const { by, ...fields } = actor;
  const { families } = await deps.families.revokeFamilies({ clientId }, reason, { revoked_by: by, ...fields });
  deps.onRevoked?.();
  deps.audit.record('client.tokens_revoked', {
    client_id: clientId, tokens_not_before: cutoff.toISOString(), reason, families_revoked: families, by, ...fields,
  });
  return { client, cutoff, families };
}
