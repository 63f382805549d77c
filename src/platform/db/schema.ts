import type { SigningAlg } from '../keys/keyring.js';
import type { Generated } from 'kysely';

/**
 * The table types kysely checks every query against: declared once, here. Each migration that
 * adds a table adds its interface and its entry in `Database`.
 */

export interface LatchkeyMigrationsTable {
  name: string;
  applied_at: Generated<Date>;
}

/** OpenID Connect Core §5.1 profile claims kept as one JSON object (name, given_name, …, locale). */
export type ProfileClaims = Partial<Record<
  'name' | 'given_name' | 'family_name' | 'middle_name' | 'nickname' | 'preferred_username' | 'profile' |
  'picture' | 'website' | 'gender' | 'birthdate' | 'zoneinfo' | 'locale', string>>;

/** OpenID Connect Core §5.1.1. */
export type AddressClaim = Partial<Record<'formatted' | 'street_address' | 'locality' | 'region' | 'postal_code' | 'country', string>>;

export interface UsersTable {
  id: string;
  username: string;
  email: string | null;
  email_verified: Generated<boolean>;
  phone_number: string | null;
  phone_number_verified: Generated<boolean>;
  profile: ProfileClaims;
  address: AddressClaim | null;
  password_hash: string | null;
  disabled: Generated<boolean>;
  created_at: Date;
  updated_at: Date;
}

export interface SessionsTable {
  id_hash: Buffer;
  sid: string;
  user_id: string;
  auth_time: Date;
  amr: string[];
  acr: string | null;
  created_at: Date;
  last_seen_at: Date;
  idle_expires_at: Date;
  absolute_expires_at: Date;
  ended_at: Date | null;
  /** src/users/assurance.ts FactorTimes: each factor proved, epoch ms. */
  factor_times: Generated<unknown>;
  /** The level the account had to reach when it signed in (null: none); below it the sign-in is not finished. */
  required_acr: string | null;
}

export interface LoginThrottleTable {
  key: string;
  failures: number;
  blocked_until: Date | null;
  last_failure_at: Date;
}

/** Where each account signed in from (src/users/known-address-store.ts); the login capability's migration. */
export interface KnownSignInAddressesTable {
  user_id: string;
  address: string;
  last_signed_in_at: Date;
}

/** A passkey (src/capabilities/mfa): one WebAuthn credential of an account. */
export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  name: string;
  public_key: Buffer;
  /** bigint: pg returns it as a string. */
  counter: string | number;
  transports: Generated<string[]>;
  device_bound: boolean;
  backed_up: boolean;
  aaguid: string | null;
  created_at: Date;
  last_used_at: Date | null;
}

export interface WebauthnChallengesTable {
  challenge_hash: Buffer;
  purpose: string;
  user_id: string | null;
  expires_at: Date;
}

export interface TotpFactorsTable {
  user_id: string;
  secret_ciphertext: string;
  secret_nonce: string;
  confirmed_at: Date | null;
  /** bigint: pg returns it as a string. */
  last_used_step: string | number | null;
  created_at: Date;
  last_used_at: Date | null;
}

export interface RecoveryCodesTable {
  user_id: string;
  code_hash: Buffer;
  created_at: Date;
  used_at: Date | null;
}

export interface MfaEnrolmentRequiredTable {
  user_id: string;
  required_at: Date;
}

/** A device authorization (RFC 8628; src/capabilities/device-authorization). */
export interface DeviceAuthorizationsTable {
  device_code_hash: Buffer;
  user_code: string;
  client_id: string;
  scope: string;
  audience: unknown;
  status: 'pending' | 'approved' | 'denied' | 'redeemed';
  interval_seconds: number;
  created_at: Date;
  expires_at: Date;
  grant_id: string | null;
  user_id: string | null;
  sid: string | null;
  auth_time: Date | null;
  amr: string[] | null;
  acr: string | null;
  decided_at: Date | null;
  redeemed_at: Date | null;
}

export interface ConsentsTable {
  user_id: string;
  client_id: string;
  /** Space-separated scope-tokens (RFC 6749 §3.3). */
  scopes: string;
  granted_at: Date;
  updated_at: Date;
}

export interface AuditEventsTable {
  id: Generated<string>;
  at: Date;
  event: string;
  request_id: string | null;
  client_id: string | null;
  sub: string | null;
  ip: string | null;
  user_agent: string | null;
  jti: string | null;
  details: Record<string, unknown>;
}

export type SigningKeyState = 'next' | 'active' | 'retired' | 'removed' | 'revoked';

export interface SigningKeysTable {
  kid: string;
  alg: SigningAlg;
  state: SigningKeyState;
  /** Public members only (kty, crv/x/y or n/e), as published. */
  public_jwk: Record<string, unknown>;
  /** base64url(AES-256-GCM ciphertext ‖ tag) of the private JWK; null once removed or revoked. */
  private_key_ciphertext: string | null;
  private_key_nonce: string | null;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  removed_at: Date | null;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

/** migrations/0002_clients.ts */
export interface ClientsTable {
  client_id: string;
  client_type: 'confidential' | 'public';
  token_endpoint_auth_method: string;
  /** The validated RFC 7591 metadata document (src/oauth/client-metadata.ts). */
  metadata: unknown;
  secret_hash: string | null;
  secret_expires_at: Date | null;
  previous_secret_hash: string | null;
  previous_secret_expires_at: Date | null;
  registration_access_token_hash: string | null;
  source: 'cli' | 'admin' | 'registration' | 'bootstrap';
  disabled: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  /** migrations/0024: access tokens of the client issued before this are inactive. */
  tokens_not_before: Generated<Date | null>;
  /** migrations/0024: when the client last authenticated (flushed in batches). */
  last_used_at: Generated<Date | null>;
}

/** migrations/0003_token_revocations.ts */
export interface RevokedAccessTokensTable {
  jti: string;
  client_id: string;
  expires_at: Date;
  revoked_at: Generated<Date>;
}

/** migrations/0004_client_assertion_jtis.ts */
export interface ClientAssertionJtisTable {
  client_id: string;
  jti_hash: string;
  expires_at: Date;
}

/** migrations/0014_authorization.ts */
export interface AuthorizationRequestsTable {
  id_hash: Buffer;
  kind: 'par' | 'interaction';
  client_id: string;
  /** The validated authorization request (src/capabilities/authorization-code/authorization-request.ts `AuthorizationRequest`). */
  params: unknown;
  created_at: Date;
  expires_at: Date;
  consumed_at: Date | null;
}

export interface AuthorizationCodesTable {
  code_hash: Buffer;
  grant_id: string;
  client_id: string;
  user_id: string;
  redirect_uri: string;
  /** Null: issued without PKCE to a client exempted from it (authorization-code migration 0018). */
  code_challenge: string | null;
  scope: string;
  /** The access token audience: a string or an array of strings (RFC 8707). */
  audience: unknown;
  nonce: string | null;
  sid: string;
  auth_time: Date;
  amr: string[];
  acr: string | null;
  /**
   * The `claims` request parameter (OpenID Connect Core §5.5) as validated, or null: JSON
   * (src/oauth/claims.ts `ClaimsRequest`). Added by the authorization-code capability's migration.
   */
  claims: unknown;
  created_at: Date;
  expires_at: Date;
  redeemed_at: Date | null;
}

export interface RevokedGrantsTable {
  grant_id: string;
  client_id: string;
  reason: string;
  revoked_at: Date;
  expires_at: Date;
}

/** migrations/0015_refresh_tokens.ts */
export interface RefreshFamiliesTable {
  /** The grant id: the authorization code's, carried by every access token as `gid`. */
  id: string;
  client_id: string;
  user_id: string;
  /** The scope granted (RFC 6749 §6: a refresh may narrow it, never widen it). */
  scope: string;
  /** The access token audience: a string or an array of strings (RFC 8707). */
  audience: unknown;
  sid: string;
  auth_time: Date;
  amr: string[];
  acr: string | null;
  created_at: Date;
  absolute_expires_at: Date;
  idle_expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  /** The client IP address of the token request that created the family (migration 0024). */
  created_ip: string | null;
  /** When and from which IP address the family was last rotated (migration 0024). */
  last_rotated_at: Date | null;
  last_rotated_ip: string | null;
}

export type RefreshTokenState = 'active' | 'rotated' | 'revoked';

export interface RefreshTokensTable {
  token_hash: Buffer;
  family_id: string;
  generation: number;
  state: RefreshTokenState;
  created_at: Date;
  expires_at: Date;
  rotated_at: Date | null;
  /** The successor token, AES-256-GCM under the key-encryption secret, during the grace window only. */
  successor_ciphertext: string | null;
  successor_nonce: string | null;
}

export interface SessionClientsTable {
  sid: string;
  client_id: string;
  created_at: Date;
}

/** Trusted external issuers (migrations/0023_trusted_issuers.ts). */
export interface TrustedIssuersTable {
  name: string;
  issuer: string;
  /** The validated declaration (src/oauth/trusted-issuers/issuer-config.ts). */
  config: unknown;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface Database {
  latchkey_migrations: LatchkeyMigrationsTable;
  users: UsersTable;
  sessions: SessionsTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
  totp_factors: TotpFactorsTable;
  recovery_codes: RecoveryCodesTable;
  mfa_enrolment_required: MfaEnrolmentRequiredTable;
  device_authorizations: DeviceAuthorizationsTable;
  login_throttle: LoginThrottleTable;
  known_sign_in_addresses: KnownSignInAddressesTable;
  consents: ConsentsTable;
  audit_events: AuditEventsTable;
  signing_keys: SigningKeysTable;
  clients: ClientsTable;
  revoked_access_tokens: RevokedAccessTokensTable;
  client_assertion_jtis: ClientAssertionJtisTable;
  authorization_requests: AuthorizationRequestsTable;
  authorization_codes: AuthorizationCodesTable;
  revoked_grants: RevokedGrantsTable;
  refresh_families: RefreshFamiliesTable;
  refresh_tokens: RefreshTokensTable;
  session_clients: SessionClientsTable;
  trusted_issuers: TrustedIssuersTable;
}
