import { Counter, type Registry } from 'prom-client';
import { LatencyHistogram, RequestCounter } from './request-metrics.js';

/**
 * The token service's metrics. Labels are bounded: grant_type is a registered grant or
 * `unsupported`; outcome is `success` or an RFC error code; method an auth method or `unknown`.
 */
export interface OAuthMetrics {
  /** With METRICS_PER_CLIENT also `client_id`: the authenticated client on success, `-` on any failure (a claimed id is unbounded). */
  tokensIssued: RequestCounter<'grant_type' | 'outcome' | 'client_id'>;
  /** Whether tokensIssued and introspections carry the `client_id` label. */
  perClient: boolean;
  tokenRequestDuration: LatencyHistogram<'grant_type'>;
  /** With METRICS_PER_CLIENT also `client_id`: the client that asked (answers only go to authenticated clients). */
  introspections: RequestCounter<'result' | 'format' | 'client_id'>;
  /** Every {active:false} answer (refusals included) by why: bounded (src/capabilities/introspection/introspect.ts InactiveReason). */
  introspectionsInactive: RequestCounter<'reason'>;
  introspectionDuration: LatencyHistogram;
  revocations: Counter<'kind'>;
  clientAuthFailures: Counter<'method'>;
  authorizations: Counter<'outcome'>;
  consentDecisions: Counter<'decision'>;
  pkceFailures: Counter;
  pushedRequests: Counter<'outcome'>;
  userInfo: Counter<'outcome'>;
  clientTokenCutoffs: Counter;
  clientUsageFlushes: Counter<'outcome'>;
}

const cache = new WeakMap<Registry, OAuthMetrics>();

/** One set per registry (built once per server; `perClient` is METRICS_PER_CLIENT). */
export function oauthMetrics(registry: Registry, options: { perClient?: boolean } = {}): OAuthMetrics {
  let metrics = cache.get(registry);
  if (metrics) return metrics;
  const perClient = options.perClient ?? false;
  metrics = {
    tokensIssued: new RequestCounter({
      name: 'latchkey_tokens_issued_total',
      help: 'Token endpoint requests by grant type and outcome (success or the error code).',
      labelNames: perClient ? ['grant_type', 'outcome', 'client_id'] : ['grant_type', 'outcome'],
      registers: [registry],
    }),
    perClient,
    tokenRequestDuration: new LatencyHistogram({
      name: 'latchkey_token_request_duration_seconds',
      help: 'Time to handle a token request, by grant type.',
      labelNames: ['grant_type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    introspections: new RequestCounter({
      name: 'latchkey_introspections_total',
      help: 'Introspection answers by result (active, inactive, or refused: an unexpired token of this server the caller may not see) and format (json, or jwt: RFC 9701).',
      labelNames: perClient ? ['result', 'format', 'client_id'] : ['result', 'format'],
      registers: [registry],
    }),
    introspectionsInactive: new RequestCounter({
      name: 'latchkey_introspections_inactive_total',
      help: 'Introspection answers {active:false} by reason: malformed, expired, unknown_key, invalid_signature, invalid_claims, revoked, unknown_client, client_disabled, user_disabled, not_allowed (the caller may not see it), unknown_refresh_token, rotated_refresh_token.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    introspectionDuration: new LatencyHistogram({
      name: 'latchkey_introspection_duration_seconds',
      help: 'Time to handle an introspection request (client authentication included).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    revocations: new Counter({
      name: 'latchkey_revocations_total',
      help: 'Tokens revoked, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    clientTokenCutoffs: new Counter({
      name: 'latchkey_client_token_cutoffs_total',
      help: 'Tokens-not-before cutoffs set on clients (revoke-issued, rotate-secret with revoke_issued) through this server.',
      registers: [registry],
    }),
    clientUsageFlushes: new Counter({
      name: 'latchkey_client_usage_flushes_total',
      help: 'Batched writes of clients\' last-used times, by outcome (ok, failed: kept for the next flush).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    clientAuthFailures: new Counter({
      name: 'latchkey_client_auth_failures_total',
      help: 'Failed client authentications by the method tried.',
      labelNames: ['method'],
      registers: [registry],
    }),
    authorizations: new Counter({
      name: 'latchkey_authorizations_total',
      help: 'Authorization requests answered to the client, by outcome (code_issued, access_denied, login_required, consent_required, invalid_request, error) or not_redirected (error page).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    consentDecisions: new Counter({
      name: 'latchkey_consent_decisions_total',
      help: 'Consent page decisions, granted or denied.',
      labelNames: ['decision'],
      registers: [registry],
    }),
    pkceFailures: new Counter({
      name: 'latchkey_pkce_failures_total',
      help: 'Token requests whose code_verifier did not match the code_challenge.',
      registers: [registry],
    }),
    pushedRequests: new Counter({
      name: 'latchkey_pushed_authorization_requests_total',
      help: 'Pushed authorization requests (RFC 9126) by outcome (success or the error code).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    userInfo: new Counter({
      name: 'latchkey_userinfo_requests_total',
      help: 'UserInfo requests by outcome (success or the error code).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}
