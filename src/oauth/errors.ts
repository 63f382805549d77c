/**
 * Every protocol error the server answers with. What a client may see is `error` and
 * `error_description`; `debug` is detail for the log only (fosite's split). One subclass per
 * RFC error code, so a handler says `throw new InvalidGrant('code expired')`.
 */
export class OAuthError extends Error {
  constructor(
    /** The RFC error code (RFC 6749 §5.2, §4.1.2.1; RFC 6750 §3.1; RFC 7591 §3.2.2; …). */
    readonly error: string,
    /** Human-readable text for the client developer (RFC 6749 §5.2 `error_description`). */
    readonly description: string,
    /** HTTP status of the response. */
    readonly status: number = 400,
    /** Detail for the log only; never sent. */
    readonly debug?: string,
  ) {
    super(`${error}: ${description}`);
    this.name = 'OAuthError';
  }

  /** Extra response headers (WWW-Authenticate, Retry-After). */
  headers: Record<string, string> = {};

  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

const subclass = (error: string, status: number) =>
  class extends OAuthError {
    constructor(description: string, debug?: string) {
      super(error, description, status, debug);
    }
  };

// RFC 6749 §5.2 (token endpoint) and §4.1.2.1 (authorization endpoint)
export class InvalidRequest extends subclass('invalid_request', 400) {}
export class InvalidClient extends subclass('invalid_client', 401) {}
export class InvalidGrant extends subclass('invalid_grant', 400) {}
export class UnauthorizedClient extends subclass('unauthorized_client', 400) {}
export class UnsupportedGrantType extends subclass('unsupported_grant_type', 400) {}
export class InvalidScope extends subclass('invalid_scope', 400) {}
export class AccessDenied extends subclass('access_denied', 403) {}
export class UnsupportedResponseType extends subclass('unsupported_response_type', 400) {}
export class ServerError extends subclass('server_error', 500) {}
export class TemporarilyUnavailable extends subclass('temporarily_unavailable', 503) {}
// RFC 8707 §2
export class InvalidTarget extends subclass('invalid_target', 400) {}
// RFC 6750 §3.1
export class InvalidToken extends subclass('invalid_token', 401) {}
export class InsufficientScope extends subclass('insufficient_scope', 403) {}
// RFC 7009 §2.2.1
export class UnsupportedTokenType extends subclass('unsupported_token_type', 400) {}
// RFC 7591 §3.2.2
export class InvalidRedirectUri extends subclass('invalid_redirect_uri', 400) {}
export class InvalidClientMetadata extends subclass('invalid_client_metadata', 400) {}
// OpenID Connect Core §3.1.2.6
// RFC 8628 §3.5 (device authorization grant): errors of a poll at the token endpoint, 400 as RFC 6749 §5.2 says.
export class AuthorizationPending extends subclass('authorization_pending', 400) {}
export class SlowDown extends subclass('slow_down', 400) {}
export class ExpiredToken extends subclass('expired_token', 400) {}
/** RFC 8628 §3.5: the person denied the device, answered at the token endpoint (400, not the authorization endpoint's 403). */
export class DeviceAccessDenied extends subclass('access_denied', 400) {}
export class LoginRequired extends subclass('login_required', 400) {}
export class ConsentRequired extends subclass('consent_required', 400) {}
export class InteractionRequired extends subclass('interaction_required', 400) {}
export class InvalidRequestUri extends subclass('invalid_request_uri', 400) {}
export class RequestNotSupported extends subclass('request_not_supported', 400) {}
export class RequestUriNotSupported extends subclass('request_uri_not_supported', 400) {}
// Not an RFC code, but the same shape for every non-protocol failure of the HTTP layer.
export class NotFound extends subclass('not_found', 404) {}
export class PayloadTooLarge extends subclass('payload_too_large', 413) {}
export class UnsupportedMediaType extends subclass('unsupported_media_type', 415) {}
export class MethodNotAllowed extends subclass('method_not_allowed', 405) {}
export class TooManyRequests extends subclass('too_many_requests', 429) {}
