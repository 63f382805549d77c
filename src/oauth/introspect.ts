import { authenticateClient, type AuthenticatedClient, type ClientAuthDeps, type ClientAuthInput } from './client-auth.js';
import { InvalidRequest } from './errors.js';
import { readParams } from './params.js';
import { verifyAccessToken, type AccessTokenDeps } from './tokens.js';

/** RFC 7662 §2.2 */
export type IntrospectionResponse =
  | { active: false }
  | {
      active: true;
      scope?: string;
      client_id: string;
      token_type: 'Bearer';
      exp: number;
      iat: number;
      sub: string;
      aud: string | string[];
      iss: string;
      jti: string;
    };

export interface IntrospectionDeps extends ClientAuthDeps, AccessTokenDeps {
  /** Is this access token revoked? (the jti denylist; later also its grant/family state) */
  isRevoked(claims: { jti: string; client_id: string; gid?: string }): Promise<boolean>;
  /** Whether the user a token was issued for still exists and is enabled (one read; client_credentials tokens never ask). */
  userActive(sub: string): Promise<boolean>;
}

/**
 * RFC 7662 §2.1: only an authenticated client may introspect (401 otherwise, §2.3). Anything
 * that is not a live token this server issued — expired, revoked, signed by a key no longer in
 * the key ring, issued to a client since deleted or disabled, malformed, unknown — is simply
 * `{active:false}` (§2.2). token_type_hint is a
 * hint: only access tokens exist to be introspected today, so it changes nothing.
 */
export async function introspect(input: ClientAuthInput, deps: IntrospectionDeps): Promise<{ caller: AuthenticatedClient; response: IntrospectionResponse }> {
  const caller = await authenticateClient(input, deps, { allowPublic: false });
  const { token } = readParams(input.body, ['token', 'token_type_hint']);
  if (token === undefined) throw new InvalidRequest('token is required (RFC 7662 §2.1)');
  const verified = await verifyAccessToken(deps, token);
  if (!verified.valid) return { caller, response: { active: false } };
  const c = verified.claims;
  if (await deps.isRevoked(c)) return { caller, response: { active: false } };
  // A token outlives neither its client's deletion nor its disabling (read from the client cache).
  const owner = await deps.clients.get(c.client_id);
  if (!owner || owner.disabled) return { caller, response: { active: false } };
  // A user's token (it names its grant) outlives neither the user's deletion nor disabling.
  if (c.gid !== undefined && !(await deps.userActive(c.sub))) return { caller, response: { active: false } };
  return {
    caller,
    response: {
      active: true,
      ...(c.scope ? { scope: c.scope } : {}),
      client_id: c.client_id,
      token_type: 'Bearer',
      exp: c.exp,
      iat: c.iat,
      sub: c.sub,
      aud: c.aud,
      iss: c.iss,
      jti: c.jti,
    },
  };
}
