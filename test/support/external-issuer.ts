import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * A local stand-in for an external identity provider — a Kubernetes API server, a CI provider's
 * OIDC issuer, a SPIFFE JWT-SVID issuer — on 127.0.0.1: its own keys, an OpenID discovery
 * document at /.well-known/openid-configuration and a JWK set at /jwks, and `sign()` to make its
 * tokens. Real HTTP: Latchkey fetches from it through its guarded outbound fetcher (the test
 * allows 127.0.0.1 with OUTBOUND_ALLOWED_HOSTS).
 */
export interface ExternalIssuer {
  /** http://127.0.0.1:<port> (the `iss` of its tokens). */
  issuer: string;
  jwksUri: string;
  /** Its current public keys. */
  jwks(): { keys: JWK[] };
  /** Paths requested so far (to count JWKS fetches). */
  requests: string[];
  /**
   * A token of this issuer: `iss`, `iat` (now, or `iatOffset` seconds from now), `exp` (`ttl`
   * seconds after iat, default 600), a fresh `jti` unless `jti: null`, and the given claims.
   */
  sign(claims: Record<string, unknown>, options?: { ttl?: number; iatOffset?: number; jti?: string | null; kid?: string; alg?: string; typ?: string; noIat?: boolean }): Promise<string>;
  /** A new signing key (new kid) published beside the old ones, used from now on. */
  rotate(): Promise<string>;
  close(): Promise<void>;
}

interface IssuerKey { kid: string; alg: string; privateKey: CryptoKey; publicJwk: JWK }

async function newKey(alg: 'RS256' | 'ES256', kid: string): Promise<IssuerKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' } };
}

export async function startExternalIssuer(options: { alg?: 'RS256' | 'ES256'; clock?: { now(): Date } } = {}): Promise<ExternalIssuer> {
  const alg = options.alg ?? 'RS256';
  const keys: IssuerKey[] = [await newKey(alg, 'k1')];
  const requests: string[] = [];
  let issuer = '';
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: [alg], subject_types_supported: ['public'], response_types_supported: ['id_token'] }));
    } else if (req.url === '/jwks') {
      res.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const now = () => Math.floor((options.clock?.now() ?? new Date()).getTime() / 1000);

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    requests,
    jwks: () => ({ keys: keys.map((k) => k.publicJwk) }),
    async sign(claims, o = {}) {
      const key = o.kid ? keys.find((k) => k.kid === o.kid)! : keys.at(-1)!;
      const iat = now() + (o.iatOffset ?? 0);
      const jwt = new SignJWT({ ...(o.jti === null ? {} : { jti: o.jti ?? randomUUID() }), ...claims })
        .setProtectedHeader({ alg: o.alg ?? key.alg, kid: key.kid, ...(o.typ ? { typ: o.typ } : {}) })
        .setIssuer(issuer)
        .setExpirationTime(iat + (o.ttl ?? 600));
      if (!o.noIat) jwt.setIssuedAt(iat);
      return jwt.sign(key.privateKey);
    },
    async rotate() {
      const kid = `k${keys.length + 1}`;
      keys.push(await newKey(alg, kid));
      return kid;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The claims of a Kubernetes projected service-account token for `namespace`/`serviceAccount` (audience as configured). */
export function kubernetesClaims(namespace: string, serviceAccount: string, aud: string): Record<string, unknown> {
  return {
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    aud: [aud],
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: randomUUID() }, pod: { name: `${serviceAccount}-7d9f`, uid: randomUUID() } },
  };
}

/** The claims of a CI provider's OIDC token (GitHub Actions' shape) for `repository` at `ref`. */
export function ciClaims(repository: string, ref: string, aud: string): Record<string, unknown> {
  return { sub: `repo:${repository}:ref:${ref}`, aud, repository, ref, repository_owner: repository.split('/')[0], workflow: 'deploy', event_name: 'push' };
}
