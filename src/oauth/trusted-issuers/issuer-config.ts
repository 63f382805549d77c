import { z } from 'zod';
import { isHttpsOrLoopbackHttp } from '../../platform/uris.js';
import { CLIENT_ID } from '../client.js';

/**
 * A trusted external issuer as the operator declares it (admin API, CLI, TRUSTED_ISSUERS_FILE):
 * one schema for every way in. A Kubernetes API server, a CI provider's OIDC issuer, a SPIFFE
 * trust domain's JWT-SVID issuer, another organisation's IdP. Nothing about it is implicit: the
 * keys come from where it says, tokens must name one of its audiences, and a token stands for a
 * Latchkey client or user only through a subject mapping rule that matches it.
 */

/** Asymmetric JWS algorithms only: `none` and HMAC are never accepted from an external issuer (RFC 8725 §3.1). */
export const EXTERNAL_TOKEN_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type ExternalTokenAlg = (typeof EXTERNAL_TOKEN_ALGS)[number];

/** An issuer's name: a short, URL- and label-safe handle (`k8s-prod`, `github-actions`). */
export const ISSUER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A token without a jti is accepted only this young, whatever max_token_age says (replay is bounded by age alone). */
export const NO_JTI_MAX_AGE_SECONDS = 300;

const httpsUrl = z.string().max(2000).superRefine((uri, ctx) => {
  let url: URL | undefined;
  try { url = new URL(uri); } catch { /* below */ }
  if (!url || !isHttpsOrLoopbackHttp(url)) ctx.addIssue({ code: 'custom', message: 'must be an https URL (http only on loopback)' });
  else if (url.hash || url.search) ctx.addIssue({ code: 'custom', message: 'must have no query or fragment' });
});

/** A public JWK: asymmetric, no private member. */
const publicJwk = z.looseObject({
  kty: z.enum(['EC', 'RSA', 'OKP'], { error: 'kty must be EC, RSA or OKP (symmetric keys are not accepted)' }),
  kid: z.string().optional(),
}).refine((jwk) => !['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((m) => m in jwk), 'must hold public keys only (no private members)');

const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * One subject mapping rule: when every claim of `match` matches, the token stands for the client
 * `client_id` or the user `user` (a username or e-mail). A claim is named as a top-level claim
 * (`sub`, `repository`) or by JSON Pointer (RFC 6901) for a nested one
 * (`/kubernetes.io/namespace`); its value must be a string equal to the pattern, where each `*`
 * stands for one or more characters other than `/` and `:` (so `repo:acme/*:ref:refs/heads/main`
 * cannot match another organisation, ref or path).
 */
export const subjectMappingSchema = z.strictObject({
  // A key that names an object's prototype is dropped when the record is built (zod skips
  // `__proto__`), leaving a rule that matches more than it says: refused, on the raw input.
  match: z.preprocess((value, ctx) => {
    if (value !== null && typeof value === 'object' && Object.keys(value).some((k) => PROTOTYPE_KEYS.has(k))) {
      ctx.issues.push({ code: 'custom', message: 'a claim must not be named __proto__, constructor or prototype', input: value });
    }
    return value;
  }, z.record(z.string().min(1).max(200), z.string().min(1).max(500)))
    .refine((m) => Object.keys(m).length > 0 && Object.keys(m).length <= 10, 'must name 1 to 10 claims'),
  client_id: z.string().regex(CLIENT_ID, 'must be a client_id').optional(),
  user: z.string().min(1).max(320).optional(),
}).refine((rule) => (rule.client_id === undefined) !== (rule.user === undefined), 'must name exactly one of client_id and user');
export type SubjectMapping = z.output<typeof subjectMappingSchema>;

export const trustedIssuerSchema = z.strictObject({
  name: z.string().regex(ISSUER_NAME, 'must be 1-63 characters of a-z 0-9 and -, starting with a letter or digit'),
  /** The `iss` its tokens carry, compared exactly (RFC 7519 §4.1.1). */
  issuer: httpsUrl,
  /** Where its keys are: a JWK set URL (fetched by the guarded outbound fetcher), … */
  jwks_uri: httpsUrl.optional(),
  /** … its OpenID discovery document (`{issuer}/.well-known/openid-configuration`, whose issuer must match), … */
  discovery: z.literal(true).optional(),
  /** … or a static set. Exactly one of the three. */
  jwks: z.object({ keys: z.array(publicJwk).min(1).max(20) }).optional(),
  /** The `aud` its tokens must name (one of these): usually this server's issuer URL. */
  audiences: z.array(z.string().min(1).max(2000)).min(1).max(10),
  algorithms: z.array(z.enum(EXTERNAL_TOKEN_ALGS)).min(1).max(EXTERNAL_TOKEN_ALGS.length).default(['RS256', 'ES256']),
  /** Oldest a token may be (from its iat; from exp - this for one without iat), in seconds. */
  max_token_age: z.number().int().min(30).max(86400).default(3600),
  /**
   * Accept a client or grant assertion more than once until it expires (a Kubernetes projected
   * service-account token, which the pod re-reads for its whole life). Off by default: a jti is
   * spent on first use.
   */
  allow_reuse: z.boolean().default(false),
  subject_mappings: z.array(subjectMappingSchema).max(100).default([]),
  disabled: z.boolean().default(false),
}).superRefine((issuer, ctx) => {
  const sources = [issuer.jwks_uri !== undefined, issuer.discovery === true, issuer.jwks !== undefined].filter(Boolean).length;
  if (sources !== 1) ctx.addIssue({ code: 'custom', message: 'name exactly one key source: jwks_uri, discovery: true, or jwks', path: ['jwks_uri'] });
});
export type TrustedIssuerConfig = z.output<typeof trustedIssuerSchema>;
