import type { Client } from '../client.js';
import type { ClientMetadata } from '../client-metadata.js';

/** The successful token response (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
  /** RFC 8693 §2.2.1: the type of the token issued by a token exchange. */
  issued_token_type?: string;
}

/**
 * RFC 6749 §5.1: the successful token response of any grant. `scope` only when one was
 * granted; a refresh token and an ID token only when the grant issued them.
 */
export function tokenResponse(
  accessToken: { token: string; expiresIn: number }, scope: string, issued: { refreshToken?: string | undefined; idToken?: string | undefined } = {},
): TokenResponse {
  // Built by assignment, not spreads: this runs for every token issued.
  const response: TokenResponse = { access_token: accessToken.token, token_type: 'Bearer', expires_in: accessToken.expiresIn };
  if (scope) response.scope = scope;
  if (issued.refreshToken) response.refresh_token = issued.refreshToken;
  if (issued.idToken) response.id_token = issued.idToken;
  return response;
}

/**
 * What a client may register for and the token endpoint serves, known before the server runs:
 * the grant_type value, whether public clients may use it, and the rules it places on a
 * client's metadata. Client validation, discovery and /token all read these from the one
 * registry (server/capabilities.ts), so a grant type nobody serves can be neither registered
 * nor advertised.
 */
export interface GrantType {
  grantType: string;
  /** RFC 6749 §2.1: whether a public client (token_endpoint_auth_method none) may use it. */
  publicClients: boolean;
  /** Problems a client's metadata has for this grant type, when it registers for it (RFC 7591 §2). */
  clientMetadataProblems?(metadata: ClientMetadata): string[];
}

/** What a grant handler is given: the authenticated client and the parameters it declared. */
export interface GrantInput<P extends string> {
  client: Client;
  /** The grant's declared single-valued parameters (repeats already rejected). */
  params: Partial<Record<P, string>>;
  /** RFC 8707 `resource` values (a parameter that may repeat). */
  resources: string[];
  /** The values of the grant's declared `repeatedParameters` (e.g. RFC 8693 `audience`), each in request order. */
  repeated?: Partial<Record<string, string[]>>;
  /** The client's IP address, when known (recorded with a refresh family's creation and rotation). */
  ip?: string;
}

/** An audit event a grant produced besides `token.issued`: its name and identifiers, never a token. */
export interface GrantAuditEvent {
  event: string;
  fields: Record<string, unknown>;
}

export interface GrantResult {
  response: TokenResponse;
  /**
   * For the token.issued audit event: identifiers, never the token; `details` are the grant's own
   * (e.g. a token exchange's act chain), in the same event rather than a second one per token.
   */
  issued: { sub: string; scope: string; jti: string; details?: Record<string, unknown> };
  /** Further audit events of this issuance (e.g. refresh.rotated); the endpoint adds the request's fields. */
  audit?: GrantAuditEvent[];
}

/**
 * A refusal that is an audit event of its own (e.g. a refresh token reused): the error carries
 * it, so the HTTP layer records it without knowing the grant.
 */
export interface AuditedRefusal {
  readonly auditEvent: GrantAuditEvent;
}

export function auditEventOf(err: unknown): GrantAuditEvent | undefined {
  return err !== null && typeof err === 'object' && 'auditEvent' in err ? (err as AuditedRefusal).auditEvent : undefined;
}

/**
 * One grant type as the token endpoint serves it (DESIGN): what it is called, the parameters
 * it reads, and what it does. Built by its capability with its dependencies closed over.
 */
export interface TokenGrant<P extends string = string> extends GrantType {
  parameters: readonly P[];
  /** Parameters besides `resource` that may appear more than once (RFC 8693 §2.1 `audience`). */
  repeatedParameters?: readonly string[];
  handle(input: GrantInput<P>): Promise<GrantResult>;
}
