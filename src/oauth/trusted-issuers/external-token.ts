/**
 * The port every user of an external token goes through: client authentication by workload
 * identity, the JWT bearer grant (RFC 7523 §2.1) and token exchange (RFC 8693) ask it to verify a
 * JWT from a trusted external issuer (src/oauth/trusted-issuers/) and to say which Latchkey
 * principal the issuer's subject mapping makes of it. Framework-free; no caller sees keys,
 * discovery documents or the issuers' store.
 */

/** A Latchkey principal an issuer's subject mapping names: a client, or a user (by id). */
export type MappedPrincipal = { kind: 'client'; clientId: string } | { kind: 'user'; userId: string };

/** What a token is presented as; a client assertion and a grant assertion are single-use (by jti). */
export type ExternalTokenUse = 'client_assertion' | 'authorization_grant' | 'subject_token' | 'actor_token';

export interface VerifiedExternalToken {
  /** The token's `iss`: the trusted issuer's identifier. */
  issuer: string;
  /** The operator's name for that issuer (metric label, audit field). */
  issuerName: string;
  /** The token's own `sub`. */
  subject: string;
  /** Every claim, as verified. */
  claims: Readonly<Record<string, unknown>>;
  /** The token's `exp`, in seconds since the epoch: nothing issued from it outlives it. */
  exp: number;
  /**
   * What the issuer's subject mapping makes of the token; undefined when no rule matches it, and
   * for a client assertion (bound to its client by issuer and subject, not by the mapping).
   */
  principal?: MappedPrincipal | undefined;
}

export interface ExternalTokenVerifier {
  /** Whether `issuer` (a token's `iss`, read before any check) is a trusted issuer that is enabled. */
  trusts(issuer: string): boolean;
  /**
   * Verifies a JWT of a trusted issuer: its signature with the issuer's keys and allowed
   * algorithms, `iss`, `aud` (one of the issuer's audiences), `exp`/`nbf`/`iat` and its age
   * (the issuer's max_token_age), and — for a client or grant assertion — that its `jti` was not
   * used before (a token without a jti only within a short age). Throws ExternalTokenRejected.
   */
  verify(token: string, use: ExternalTokenUse, options?: ExternalTokenVerifyOptions): Promise<VerifiedExternalToken>;
}

export interface ExternalTokenVerifyOptions {
  /**
   * The caller's own checks of a token that passed every check, run before its jti is spent:
   * throwing here spends nothing (a client assertion naming another workload must not burn the
   * right workload's token), and a per-client rate limit admitted here counts before the spend,
   * as for private_key_jwt. A later rejection (the jti was already spent) is the caller's to undo.
   */
  beforeSpend?(token: VerifiedExternalToken): void | Promise<void>;
}

/**
 * An external token refused. `reason` is safe to log and audit (it never quotes the token);
 * the caller turns it into its own protocol error (invalid_client, invalid_grant, invalid_request).
 */
export class ExternalTokenRejected extends Error {
  constructor(readonly reason: string, readonly issuer?: string | undefined) {
    super(reason);
    this.name = 'ExternalTokenRejected';
  }
}

/** A server with no trusted issuer: every external token is refused. */
export const NO_TRUSTED_ISSUERS: ExternalTokenVerifier = {
  trusts: () => false,
  verify: async () => { throw new ExternalTokenRejected('no trusted issuer is configured'); },
};
