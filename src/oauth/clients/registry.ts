import { randomBytes } from 'node:crypto';
import type { Clock } from '../../platform/clock.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import type { ClientRepository } from './store.js';
import { CLIENT_ID, generateSecret, hashMatches, hashSecret, tokenCutoffAt, type Client } from '../client.js';
import { ADMINISTRATOR_ONLY_GRANTS, ADMINISTRATOR_ONLY_MEMBERS, parseClientMetadata, usesClientSecret, type ClientMetadata, type ClientMetadataRules } from '../client-metadata.js';
import { InvalidClientMetadata, InvalidRequest, NotFound } from '../errors.js';

/** Who made a change, for the audit trail and the `source` column. */
export type ClientSource = Client['source'];


/** A rule a way of managing clients adds on valid metadata: the problem (`member: why`) or undefined. */
export type MetadataPolicy = (metadata: ClientMetadata) => string | undefined;

export interface CreatedClient {
  client: Client;
  /** Shown once; only its SHA-256 is stored. */
  clientSecret?: string;
  /** RFC 7592: shown once to a dynamically registered client. */
  registrationAccessToken?: string;
}

/** The JSON a client is shown as (admin API, CLI): metadata and state, never a hash. */
export function describeClient(client: Client): Record<string, unknown> {
  return {
    client_id: client.clientId,
    client_type: client.clientType,
    ...client.metadata,
    disabled: client.disabled,
    source: client.source,
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
    tokens_not_before: client.tokensNotBefore?.toISOString() ?? null,
    last_used_at: client.lastUsedAt?.toISOString() ?? null,
    client_secrets: client.secrets.map((s, i) => ({ slot: i === 0 ? 'current' : 'previous', expires_at: s.expiresAt?.toISOString() ?? null })),
  };
}

/** RFC 9700 §2.1.1: an exemption from PKCE given (`pkce: "exempted"`) or withdrawn (`"required"`), for the audit event. */
function pkceChange(before: ClientMetadata | undefined, after: ClientMetadata): { pkce?: 'exempted' | 'required' } {
  const was = before?.require_pkce === false;
  const is = after.require_pkce === false;
  return was === is ? {} : { pkce: is ? 'exempted' : 'required' };
}

/**
 * Creating, changing and removing clients: the one path the CLI, the admin API, Dynamic Client
 * Registration and the bootstrap file share. Every input goes through parseClientMetadata.
 */
export class ClientRegistry {
  constructor(
    private readonly repository: ClientRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    /** The grant types clients may register for (the server's registry), this server's issuer (ISSUER) and where it may send requests. */
    private readonly rules: ClientMetadataRules,
  ) {}

  /**
   * `policy`: the caller's own rule on the parsed metadata (Dynamic Client Registration's), a
   * problem or nothing. `current`: the client's metadata before an update (its redirect URIs are
   * kept as they are, even where a rule has since become stricter). A dynamically registered
   * client can grant itself none of ADMINISTRATOR_ONLY_MEMBERS (first-party, resource server),
   * nor lose what an administrator granted it: an RFC 7592 update that sends back what it read,
   * or leaves the member out (§2.2 replaces the metadata), keeps it.
   */
  private validate(input: unknown, source: ClientSource, policy?: MetadataPolicy, current?: ClientMetadata): ClientMetadata {
    // Before parsing, so the refusal says why rather than that the admin-only member is missing.
    if (source === 'registration' && current?.token_endpoint_auth_method !== 'workload_identity' &&
      (input as { token_endpoint_auth_method?: unknown } | null)?.token_endpoint_auth_method === 'workload_identity') {
      throw new InvalidClientMetadata('token_endpoint_auth_method: workload_identity may only be set by an administrator');
    }
    const metadata = parseClientMetadata(input, {
      ...this.rules, ignoreUnknown: source === 'registration',
      registeredRedirectUris: current ? [...current.redirect_uris, ...current.post_logout_redirect_uris] : [],
    });
    if (source === 'registration') {
      for (const [member, privileged] of Object.entries(ADMINISTRATOR_ONLY_MEMBERS) as [keyof typeof ADMINISTRATOR_ONLY_MEMBERS, boolean][]) {
        const granted = current?.[member] === privileged;
        if (metadata[member] === privileged && !granted) throw new InvalidClientMetadata(`${member}: may only be set by an administrator`);
        if (granted) metadata[member] = privileged;
      }
      for (const member of ADMINISTRATOR_ONLY_GRANTS) {
        const granted = current?.[member];
        if (metadata[member] !== undefined && JSON.stringify(metadata[member]) !== JSON.stringify(granted)) {
          throw new InvalidClientMetadata(`${member}: may only be set by an administrator`);
        }
        if (granted !== undefined) (metadata as Record<string, unknown>)[member] = granted;
      }
    }
    const problem = policy?.(metadata);
    if (problem !== undefined) throw new InvalidClientMetadata(problem);
    return metadata;
  }

  async create(input: unknown, options: { source: ClientSource; clientId?: string; registrationAccessToken?: boolean; policy?: MetadataPolicy; fields?: Record<string, unknown> }): Promise<CreatedClient> {
    const clientId = options.clientId ?? randomBytes(16).toString('base64url');
    if (!CLIENT_ID.test(clientId)) throw new InvalidClientMetadata('client_id: must be 1-200 characters of A-Z a-z 0-9 . _ ~ -');
    const metadata = this.validate(input, options.source, options.policy);
    const clientSecret = usesClientSecret(metadata.token_endpoint_auth_method) ? generateSecret() : undefined;
    const registrationAccessToken = options.registrationAccessToken ? generateSecret() : undefined;
    const client = await this.repository.insert({
      clientId,
      metadata,
      secretHash: clientSecret ? hashSecret(clientSecret) : null,
      registrationAccessTokenHash: registrationAccessToken ? hashSecret(registrationAccessToken) : null,
      source: options.source,
    });
    if (!client) throw new InvalidClientMetadata(`client_id: ${clientId} is already registered`);
    this.audit.record('client.created', { client_id: clientId, source: options.source, ...pkceChange(undefined, metadata), ...options.fields });
    return { client, ...(clientSecret ? { clientSecret } : {}), ...(registrationAccessToken ? { registrationAccessToken } : {}) };
  }

  async get(clientId: string): Promise<Client> {
    const client = CLIENT_ID.test(clientId) ? await this.repository.find(clientId) : undefined;
    if (!client) throw new NotFound(`no client ${clientId}`);
    return client;
  }

  list(): Promise<Client[]> {
    return this.repository.list();
  }

  /**
   * Replaces the metadata (RFC 7592 §2.2 semantics); `merge` keeps the members not given
   * (admin PATCH, CLI update). A switch to a client_secret_* method from one without a secret
   * generates a secret, returned once.
   */
  async update(clientId: string, input: unknown, options: { source: ClientSource; merge?: boolean; policy?: MetadataPolicy; fields?: Record<string, unknown> }): Promise<CreatedClient> {
    const current = await this.get(clientId);
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new InvalidClientMetadata('client metadata must be a JSON object');
    // response_types follow from grant_types (RFC 7591 §2.1): a merge recomputes them unless given.
    const { response_types: _derived, ...kept } = current.metadata;
    const next = options.merge ? { ...kept, ...(input as object) } : input;
    const metadata = this.validate(next, options.source, options.policy, current.metadata);
    const needsSecret = usesClientSecret(metadata.token_endpoint_auth_method) && current.secrets.length === 0;
    const clientSecret = needsSecret ? generateSecret() : undefined;
    const client = await this.repository.updateMetadata(clientId, metadata, clientSecret ? hashSecret(clientSecret) : undefined);
    if (!client) throw new NotFound(`no client ${clientId}`);
    this.audit.record('client.updated', { client_id: clientId, source: options.source, ...pkceChange(current.metadata, metadata), ...options.fields });
    return { client, ...(clientSecret ? { clientSecret } : {}) };
  }

  /**
   * A new secret becomes current at once; the old one keeps working for `overlapSeconds` so
   * the callers can be switched over (0 ends it now).
   */
  async rotateSecret(clientId: string, overlapSeconds: number, options: { source: ClientSource; fields?: Record<string, unknown> }): Promise<CreatedClient> {
    const current = await this.get(clientId);
    if (!usesClientSecret(current.metadata.token_endpoint_auth_method)) {
      throw new InvalidRequest(`client ${clientId} authenticates with ${current.metadata.token_endpoint_auth_method} and has no secret`);
    }
    const clientSecret = generateSecret();
    const previousExpiresAt = new Date(this.clock.now().getTime() + overlapSeconds * 1000);
    const client = await this.repository.rotateSecret(clientId, hashSecret(clientSecret), previousExpiresAt);
    if (!client) throw new NotFound(`no client ${clientId}`);
    this.audit.record('client.secret_rotated', { client_id: clientId, source: options.source, previous_expires_at: previousExpiresAt.toISOString(), ...options.fields });
    return { client, clientSecret };
  }

  /**
   * Sets the client's tokens-not-before cutoff at the next whole second (tokenCutoffAt), or keeps
   * a later one. Not audited here: revokeIssuedTokens (src/oauth/clients/revoke-issued.ts) records
   * the whole action once, with its reason and the families it revoked.
   */
  async setTokenCutoff(clientId: string): Promise<Client> {
    const client = CLIENT_ID.test(clientId) ? await this.repository.setTokenCutoff(clientId, tokenCutoffAt(this.clock.now())) : undefined;
    if (!client) throw new NotFound(`no client ${clientId}`);
    return client;
  }

  /** The clients unused since `since` (never used: counted from their creation), least recently used first. */
  unusedSince(since: Date): Promise<Client[]> {
    return this.repository.unusedSince(since);
  }

  async setDisabled(clientId: string, disabled: boolean, options: { source: ClientSource; fields?: Record<string, unknown> }): Promise<Client> {
    const client = CLIENT_ID.test(clientId) ? await this.repository.setDisabled(clientId, disabled) : undefined;
    if (!client) throw new NotFound(`no client ${clientId}`);
    this.audit.record(disabled ? 'client.disabled' : 'client.enabled', { client_id: clientId, source: options.source, ...options.fields });
    return client;
  }

  async delete(clientId: string, options: { source: ClientSource; fields?: Record<string, unknown> }): Promise<void> {
    const deleted = CLIENT_ID.test(clientId) && await this.repository.delete(clientId);
    if (!deleted) throw new NotFound(`no client ${clientId}`);
    this.audit.record('client.deleted', { client_id: clientId, source: options.source, ...options.fields });
  }

  /** RFC 7592 §3: does this registration access token belong to this client? (constant-time) */
  async registrationAccessTokenMatches(clientId: string, token: string): Promise<boolean> {
    if (!CLIENT_ID.test(clientId)) return false;
    return hashMatches(token, await this.repository.registrationAccessTokenHash(clientId));
  }
}
