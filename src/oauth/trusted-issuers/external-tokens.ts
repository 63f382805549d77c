import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Registry } from 'prom-client';
import { epochSeconds, type Clock } from '../../platform/clock.js';
import { externalTokenCounter, type ExternalTokenCounter } from '../../platform/observability/external-token-metrics.js';
import type { Notifier } from '../../platform/db/database.js';
import type { OutboundFetcher } from '../../platform/outbound/fetcher.js';
import { ASSERTION_CLOCK_TOLERANCE_SECONDS, CLIENT_ASSERTION_MAX_LENGTH, hashJti, type AssertionJtiStore } from '../client-auth/authenticate.js';
import type { ClientKeys } from '../client-auth/client-keys.js';
import {
  ExternalTokenRejected, type ExternalTokenUse, type ExternalTokenVerifier, type ExternalTokenVerifyOptions,
  type MappedPrincipal, type VerifiedExternalToken,
} from './external-token.js';
import { NO_JTI_MAX_AGE_SECONDS, type TrustedIssuerConfig } from './issuer-config.js';
import { TemporarilyUnavailable } from '../errors.js';

/** `typ` values (RFC 8725 §3.11) of JWTs made for another purpose: never accepted as an identity token. */
const FOREIGN_TYPES = new Set(['logout+jwt', 'token-introspection+jwt', 'dpop+jwt', 'secevent+jwt']);
import { TRUSTED_ISSUERS_CHANNEL } from './store.js';
import { matchSubjectMapping } from './subject-mapping.js';

/** Longest external token read at all: the client assertion cap, as most arrive as one. */
export const EXTERNAL_TOKEN_MAX_LENGTH = CLIENT_ASSERTION_MAX_LENGTH;
/** Leeway for the issuer's clock on exp/nbf/iat: the client assertions' own. */
export const EXTERNAL_TOKEN_CLOCK_TOLERANCE_SECONDS = ASSERTION_CLOCK_TOLERANCE_SECONDS;
/** How long a fetched discovery document is used before it is fetched again. */
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;
/** Least time between two fetches of one issuer's discovery document. */
const DISCOVERY_COOLDOWN_MS = 30_000;
const DISCOVERY_MAX_BYTES = 64 * 1024;

/** Uses whose token is single-use by jti (RFC 7523 §3 (7)); a subject or actor token may be presented again. */
const SINGLE_USE: ReadonlySet<ExternalTokenUse> = new Set(['client_assertion', 'authorization_grant']);

export interface ExternalTokensDeps {
  /** Every declared issuer (the store's list). */
  load(): Promise<TrustedIssuerConfig[]>;
  /** The shared JWK set cache (the one private_key_jwt uses). */
  keys: Pick<ClientKeys, 'keySetAt'>;
  /** The guarded outbound fetcher, for discovery documents. */
  outbound: Pick<OutboundFetcher, 'fetch' | 'policy'>;
  clock: Clock;
  /** Spent jtis (the client assertion jti table), keyed `ext:<issuer name>`. */
  jtis: AssertionJtiStore;
  users: { findByLogin(login: string): Promise<{ id: string; disabled: boolean } | undefined> };
  metrics?: Registry | undefined;
}

interface Discovered { jwksUri?: string; fetchedAt: number; attemptAt: number; failure?: string; loading?: Promise<void> }

interface Loaded {
  config: TrustedIssuerConfig;
  /** A static set's keys, built once per load. */
  local?: JWTVerifyGetKey;
}

/**
 * The trusted external issuers, held in memory: loaded at start, reloaded whole when any
 * instance announces a change (a small table; any payload, an empty one included, reloads all)
 * and after a change made on this instance. Implements the port every external-token user goes
 * through (external-token.ts).
 */
export class ExternalTokens implements ExternalTokenVerifier {
  private byIssuer = new Map<string, Loaded>();
  private generation = 0;
  private latest: Promise<void> = Promise.resolve();
  private readonly discovered = new Map<string, Discovered>();
  private readonly counter: ExternalTokenCounter | undefined;

  constructor(private readonly deps: ExternalTokensDeps) {
    this.counter = deps.metrics ? externalTokenCounter(deps.metrics) : undefined;
  }

  /**
   * Reads every issuer again. Reloads may overlap (a NOTIFY while this instance's own change
   * reloads): the last started wins, and an earlier one returns once that one has applied.
   */
  reload(): Promise<void> {
    const generation = ++this.generation;
    const loading = this.apply(generation);
    this.latest = loading;
    return loading;
  }

  private async apply(generation: number): Promise<void> {
    const configs = await this.deps.load();
    if (generation !== this.generation) return this.latest;
    const next = new Map<string, Loaded>();
    for (const config of configs) {
      next.set(config.issuer, {
        config,
        ...(config.jwks ? { local: createLocalJWKSet(config.jwks as Parameters<typeof createLocalJWKSet>[0]) } : {}),
      });
    }
    // Discovery state is by issuer URL: kept only for those still discovered.
    for (const issuer of this.discovered.keys()) {
      if (next.get(issuer)?.config.discovery !== true) this.discovered.delete(issuer);
    }
    this.byIssuer = next;
  }

  /** Loads, then follows changes; returns the unsubscribe function. */
  async start(notifier: Notifier, onError: (err: unknown) => void): Promise<() => Promise<void>> {
    await this.reload();
    return notifier.listen(TRUSTED_ISSUERS_CHANNEL, () => { this.reload().catch(onError); });
  }

  trusts(issuer: string): boolean {
    const loaded = this.byIssuer.get(issuer);
    return loaded !== undefined && !loaded.config.disabled;
  }

  async verify(token: string, use: ExternalTokenUse, options: ExternalTokenVerifyOptions = {}): Promise<VerifiedExternalToken> {
    let label = 'unknown';
    try {
      const verified = await this.check(token, use, options, (name) => { label = name; });
      this.counter?.inc({ issuer: label, use, outcome: 'accepted' });
      return verified;
    } catch (err) {
      this.counter?.inc({ issuer: label, use, outcome: 'rejected' });
      throw err;
    }
  }

  private async check(token: string, use: ExternalTokenUse, options: ExternalTokenVerifyOptions, named: (name: string) => void): Promise<VerifiedExternalToken> {
    if (token.length > EXTERNAL_TOKEN_MAX_LENGTH) throw new ExternalTokenRejected('token too long');
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw new ExternalTokenRejected('not a JWT');
    }
    const iss = unverified.iss;
    const loaded = typeof iss === 'string' ? this.byIssuer.get(iss) : undefined;
    if (!loaded) throw new ExternalTokenRejected('issuer not trusted');
    const { config } = loaded;
    named(config.name);
    const reject = (reason: string) => new ExternalTokenRejected(reason, config.issuer);
    if (config.disabled) throw reject('issuer disabled');

    // RFC 8725 §3.11: a token explicitly typed for another purpose (a logout token, an
    // introspection response, a DPoP proof) is never taken for an identity token here.
    let typ: unknown;
    try { typ = decodeProtectedHeader(token).typ; } catch { throw reject('malformed token'); }
    if (typeof typ === 'string' && FOREIGN_TYPES.has(typ.toLowerCase().replace(/^application\//, ''))) throw reject(`typ ${typ.slice(0, 40)} is not an identity token`);

    const keys = loaded.local ?? this.deps.keys.keySetAt(await this.jwksUri(config));
    const now = this.deps.clock.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        // RFC 8725 §3.1: only the issuer's own (asymmetric) algorithms; `none` and HS* never.
        algorithms: [...config.algorithms],
        issuer: config.issuer,
        currentDate: now,
        clockTolerance: EXTERNAL_TOKEN_CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      // The issuer's keys could not be had (its jwks_uri or discovery document is down): the
      // server's trouble, not the token's — 503, and not a failed authentication to count.
      if ((err as { code?: unknown }).code === 'ERR_JWKS_URI_UNAVAILABLE') throw keysUnavailable(`the keys of issuer ${config.name} cannot be fetched; retry later`, (err as Error).message);
      throw reject(joseReason(err));
    }
    // RFC 7519 §4.1.2, §4.1.3: sub a string; aud a string or strings, one of them one of the issuer's audiences.
    if (typeof payload.sub !== 'string' || payload.sub === '') throw reject('sub must be a non-empty string');
    const aud = typeof payload.aud === 'string' ? [payload.aud] : payload.aud ?? [];
    if (!Array.isArray(aud) || !aud.every((a) => typeof a === 'string')) throw reject('aud must be a string or an array of strings');
    if (!aud.some((a) => config.audiences.includes(a))) throw reject('aud names none of the issuer\'s audiences');
    const sub = payload.sub;
    const exp = payload.exp!;
    const nowSeconds = epochSeconds(this.deps.clock);
    const iat = payload.iat;
    if (iat !== undefined && iat > nowSeconds + EXTERNAL_TOKEN_CLOCK_TOLERANCE_SECONDS) throw reject('iat in the future');
    // Age from iat; a token without iat can have been issued any time, so what it has left to
    // live is bounded instead (it is not accepted for longer than max_token_age from now).
    const age = iat !== undefined ? nowSeconds - iat : undefined;
    if (age !== undefined ? age > config.max_token_age + EXTERNAL_TOKEN_CLOCK_TOLERANCE_SECONDS : exp - nowSeconds > config.max_token_age) {
      throw reject('token too old (max_token_age)');
    }
    const singleUse = SINGLE_USE.has(use) && !config.allow_reuse;
    const jti = payload.jti;
    if (singleUse && jti === undefined && (age === undefined || age > NO_JTI_MAX_AGE_SECONDS + EXTERNAL_TOKEN_CLOCK_TOLERANCE_SECONDS)) {
      throw reject(`no jti, and not issued within ${NO_JTI_MAX_AGE_SECONDS}s`);
    }
    if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0 || jti.length > 256)) throw reject('jti must be a non-empty string');

    const verified: VerifiedExternalToken = {
      issuer: config.issuer, issuerName: config.name, subject: sub, claims: payload, exp,
      // A client assertion is bound by issuer and subject to its client (workload_identity):
      // the mapping (a user's lookup, possibly) is not needed there.
      principal: use === 'client_assertion' ? undefined : await this.principal(payload, config),
    };
    await options.beforeSpend?.(verified);
    // RFC 7523 §3 (7): a jti is used once, remembered until exp (+ leeway).
    if (singleUse && jti !== undefined) {
      const first = await this.deps.jtis.consume(`ext:${config.name}`, hashJti(jti), new Date((exp + EXTERNAL_TOKEN_CLOCK_TOLERANCE_SECONDS) * 1000));
      if (!first) throw reject('jti already used');
    }
    return verified;
  }

  /** The subject mapping's target; a user that is missing or disabled is no principal. */
  private async principal(claims: JWTPayload, config: TrustedIssuerConfig): Promise<MappedPrincipal | undefined> {
    const rule = matchSubjectMapping(claims, config.subject_mappings);
    if (!rule) return undefined;
    if (rule.client_id !== undefined) return { kind: 'client', clientId: rule.client_id };
    const user = await this.deps.users.findByLogin(rule.user!);
    return user && !user.disabled ? { kind: 'user', userId: user.id } : undefined;
  }

  /**
   * The issuer's JWK set URL: declared, or from its discovery document (OpenID Connect
   * Discovery §4), whose `issuer` must be the configured one exactly (§4.3) and whose jwks_uri
   * must be a target the outbound policy allows. Fetched at most once per cooldown.
   */
  private async jwksUri(config: TrustedIssuerConfig): Promise<string> {
    if (config.jwks_uri !== undefined) return config.jwks_uri;
    let d = this.discovered.get(config.issuer);
    if (!d) { d = { fetchedAt: -Infinity, attemptAt: -Infinity }; this.discovered.set(config.issuer, d); }
    const now = this.deps.clock.now().getTime();
    const stale = now - d.fetchedAt >= DISCOVERY_MAX_AGE_MS;
    if (stale && !d.loading && now - d.attemptAt >= DISCOVERY_COOLDOWN_MS) d.loading = this.discover(config, d).finally(() => { d.loading = undefined; });
    // A stale document is used while a fresh one loads, and after its refetch failed.
    if (d.jwksUri === undefined && d.loading) await d.loading.catch(() => undefined);
    if (d.jwksUri === undefined) throw keysUnavailable(`the discovery document of issuer ${config.name} cannot be fetched; retry later`, `discovery failed: ${d.failure ?? 'unavailable'}`);
    return d.jwksUri;
  }

  private async discover(config: TrustedIssuerConfig, d: Discovered): Promise<void> {
    d.attemptAt = this.deps.clock.now().getTime();
    try {
      const url = `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const res = await this.deps.outbound.fetch({
        url, purpose: 'trusted_issuer_discovery', maxBytes: DISCOVERY_MAX_BYTES, contentTypes: ['application/json'], headers: { accept: 'application/json' },
      });
      if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
      let doc: { issuer?: unknown; jwks_uri?: unknown };
      try { doc = JSON.parse(res.body.toString('utf8')) as typeof doc; } catch { throw new Error('not JSON'); }
      if (doc?.issuer !== config.issuer) throw new Error('its issuer is not the configured issuer');
      if (typeof doc.jwks_uri !== 'string') throw new Error('no jwks_uri');
      const problem = this.deps.outbound.policy.targetProblem(doc.jwks_uri);
      if (problem !== undefined) throw new Error(`jwks_uri refused: ${problem}`);
      d.jwksUri = doc.jwks_uri;
      d.fetchedAt = this.deps.clock.now().getTime();
      d.failure = undefined;
    } catch (err) {
      d.failure = (err as Error).message;
    }
  }
}

/** 503 while an issuer's keys cannot be fetched, with the refetch cooldown as Retry-After (RFC 9110 §10.2.3). */
function keysUnavailable(description: string, debug: string): TemporarilyUnavailable {
  const err = new TemporarilyUnavailable(description, debug);
  err.headers['retry-after'] = String(DISCOVERY_COOLDOWN_MS / 1000);
  return err;
}

/** A short, safe reason for a jose failure (never the token). */
function joseReason(err: unknown): string {
  const e = err as { code?: string; claim?: string; message?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED': return 'token expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'bad signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'algorithm not allowed';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': return `claim ${e.claim ?? ''} invalid`.replace('  ', ' ');
    case 'ERR_JWKS_NO_MATCHING_KEY': return 'no key of the issuer matches';
    case 'ERR_JWKS_URI_UNAVAILABLE': return 'issuer keys unavailable';
    case 'ERR_JWS_INVALID': case 'ERR_JWT_INVALID': return 'malformed token';
    default: return 'token not verified';
  }
}
