import { createHash } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ASSERTION_CLOCK_TOLERANCE_SECONDS, authenticateClient, ClientAuthenticationFailed, JWT_BEARER_ASSERTION_TYPE,
  DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS, type ClientAuthDeps, type ClientAuthInput,
} from '../../src/oauth/client-auth/authenticate.js';
import { InvalidRequest, TooManyRequests } from '../../src/oauth/errors.js';
import { ExternalTokenRejected } from '../../src/oauth/trusted-issuers/external-token.js';
import { epochSeconds } from '../../src/platform/clock.js';
import { ManualClock } from '../support/clock.js';
import { localClientKeys, MemoryClients, MemoryJtiStore, secretSlot, testClient } from '../support/kernel.js';

const ISSUER = 'https://id.example.com';
const TOKEN_ENDPOINT = `${ISSUER}/token`;

/** RFC 6749 §2.3.1: the id and the secret each form-encoded, then joined and base64'd (RFC 7617). */
const basicOf = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const formEncode = (s: string) => new URLSearchParams({ s }).toString().slice(2);

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try { await promise; } catch (err) { return err as Error & Record<string, unknown>; }
  throw new Error('expected a rejection');
}

/** What a ClientAuthenticationFailed carries, all of it; `told` what its description adds. */
function failed(method: string, clientId: string | undefined, debug: string | RegExp, told?: string | RegExp, challenge = method === 'client_secret_basic') {
  return {
    error: 'invalid_client', status: 401, method, clientId,
    description: told === undefined ? 'client authentication failed'
      : typeof told === 'string' ? `client authentication failed: ${told}` : expect.stringMatching(new RegExp(`^client authentication failed: ${told.source}`)),
    debug: typeof debug === 'string' ? debug : expect.stringMatching(debug),
    headers: challenge ? { 'WWW-Authenticate': 'Basic realm="latchkey"' } : {},
  };
}

/** RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E. */
const ERROR_DESCRIPTION = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;
const REPLAYED = 'client_assertion was already used (its jti has been seen before): make a new assertion, with a new jti, for each request';

let signer: { privateKey: CryptoKey; jwk: JWK };
let stranger: CryptoKey;
let otherJwk: JWK;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signer = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid: 'client-key-1', alg: 'ES256' } };
  stranger = (await generateKeyPair('ES256')).privateKey;
  otherJwk = { ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey)), alg: 'ES256' };
});

function setup() {
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const clients = new MemoryClients([
    testClient('web', {}, { secrets: [secretSlot('web-secret')] }),
    testClient('rotating', {}, {
      secrets: [secretSlot('new-secret'), secretSlot('old-secret', new Date('2030-01-01T01:00:00Z'))],
    }),
    testClient('poster', { token_endpoint_auth_method: 'client_secret_post' }, { secrets: [secretSlot('post-secret')] }),
    testClient('odd.id~1', {}, { secrets: [secretSlot('p@ss: w+rd%/')] }),
    testClient('off', {}, { secrets: [secretSlot('off-secret')], disabled: true }),
    testClient('signer', { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [signer.jwk] } }),
    // The signer's key registered without a kid, beside another key without one.
    testClient('kidless', { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [otherJwk, { ...signer.jwk, kid: undefined }] } }),
    testClient('spa', { token_endpoint_auth_method: 'none' }),
  ]);
  const jtis = new MemoryJtiStore();
  const limit = { admitted: [] as string[], released: [] as string[], refuse: false };
  const deps: ClientAuthDeps = {
    clients, assertionJtis: jtis, clientKeys: localClientKeys(), clock,
    assertionAudience: { issuer: ISSUER, tokenEndpoint: TOKEN_ENDPOINT },
    clientRateLimit: {
      admit(id) {
        limit.admitted.push(id);
        if (limit.refuse) throw new TooManyRequests('too many requests; retry after the time in Retry-After');
      },
      release(id) { limit.released.push(id); },
    },
  };
  const auth = (input: ClientAuthInput, allowPublic = true) => authenticateClient(input, deps, { allowPublic });
  /** A client assertion for `signer` (RFC 7523 §3), valid unless the overrides say otherwise. */
  const assertion = async (claims: Record<string, unknown> = {}, options: { key?: CryptoKey; alg?: string; lifetime?: number; kid?: string } = {}) => {
    const now = epochSeconds(clock);
    return new SignJWT({ iss: 'signer', sub: 'signer', aud: TOKEN_ENDPOINT, jti: 'jti-1', iat: now, exp: now + (options.lifetime ?? 60), ...claims })
      .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: options.kid ?? 'client-key-1' })
      .sign(options.key ?? signer.privateKey);
  };
  const jwtBody = async (claims: Record<string, unknown> = {}, options: Parameters<typeof assertion>[1] = {}) => ({
    client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await assertion(claims, options),
  });
  return { clock, clients, jtis, limit, deps, auth, assertion, jwtBody };
}

describe('client_secret_basic (RFC 6749 §2.3.1, RFC 7617)', () => {
  it('authenticates with the registered secret', async () => {
    const { auth, clients, limit } = setup();
    const result = await auth({ authorization: basicOf('web', 'web-secret'), body: {} });
    expect(result).toEqual({ client: clients.byId.get('web'), method: 'client_secret_basic' });
    expect(limit.admitted).toEqual(['web']);
  });
  it('form-decodes the id and the secret ("+" is a space, %XX an octet)', async () => {
    const { auth } = setup();
    expect(formEncode('p@ss: w+rd%/')).toBe('p%40ss%3A+w%2Brd%25%2F');
    const result = await auth({ authorization: basicOf(formEncode('odd.id~1'), formEncode('p@ss: w+rd%/')), body: {} });
    expect(result.client.clientId).toBe('odd.id~1');
    // %-encoding of characters that need none decodes to the same id.
    expect((await auth({ authorization: basicOf('odd%2Eid%7E1', formEncode('p@ss: w+rd%/')), body: {} })).client.clientId).toBe('odd.id~1');
    // The raw secret, not form-encoded: its '%/' is no %-escape at all; and '+' reads as a space.
    expect(await rejection(auth({ authorization: basicOf('odd.id~1', 'p@ss: w+rd%/'), body: {} })))
      .toMatchObject(failed('client_secret_basic', undefined, 'malformed Basic credentials: bad url-encoding or empty part'));
    expect((await auth({ authorization: basicOf('odd.id~1', 'p@ss:+w%2Brd%25%2F'), body: {} })).client.clientId).toBe('odd.id~1');
    expect(await rejection(auth({ authorization: basicOf('odd.id~1', 'p@ss:%20w+rd%25%2F'), body: {} })))
      .toMatchObject(failed('client_secret_basic', 'odd.id~1', 'wrong or expired client secret'));
  });
  it('takes the scheme name in any case and splits at the first colon', async () => {
    const { auth } = setup();
    const encoded = Buffer.from('web:web-secret').toString('base64');
    expect((await auth({ authorization: `bAsIc ${encoded}`, body: {} })).method).toBe('client_secret_basic');
    expect((await auth({ authorization: basicOf('rotating', 'new-secret'), body: {} })).client.clientId).toBe('rotating');
  });
  it('accepts the previous secret of a rotation until it expires', async () => {
    const { auth, clock } = setup();
    expect((await auth({ authorization: basicOf('rotating', 'old-secret'), body: {} })).client.clientId).toBe('rotating');
    clock.advance(3600);
    expect(await rejection(auth({ authorization: basicOf('rotating', 'old-secret'), body: {} })))
      .toMatchObject(failed('client_secret_basic', 'rotating', 'wrong or expired client secret'));
    expect((await auth({ authorization: basicOf('rotating', 'new-secret'), body: {} })).client.clientId).toBe('rotating');
  });
  it('accepts a client_id parameter naming the same client, refuses another', async () => {
    const { auth } = setup();
    expect((await auth({ authorization: basicOf('web', 'web-secret'), body: { client_id: 'web' } })).client.clientId).toBe('web');
    const err = await rejection(auth({ authorization: basicOf('web', 'web-secret'), body: { client_id: 'poster' } }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err).toMatchObject({ error: 'invalid_request', description: 'client_id does not match the client authenticated by the Authorization header' });
  });
  it('fails with a Basic challenge for each malformed header', async () => {
    const { auth, clients } = setup();
    const cases: Array<[string, string]> = [
      ['Basic', 'malformed Basic credentials: not base64'],
      ['Basic !!!!', 'malformed Basic credentials: not base64'],
      ['Basic d2Vi', 'malformed Basic credentials: no colon'],
      ['Basic d2Vi=', 'malformed Basic credentials: not base64'], // length not a multiple of 4
      [basicOf('web', ''), 'malformed Basic credentials: bad url-encoding or empty part'],
      [basicOf('', 'web-secret'), 'malformed Basic credentials: bad url-encoding or empty part'],
      [basicOf('web', '%zz'), 'malformed Basic credentials: bad url-encoding or empty part'],
    ];
    for (const [header, debug] of cases) {
      const err = await rejection(auth({ authorization: header, body: {} }));
      expect(err, header).toBeInstanceOf(ClientAuthenticationFailed);
      expect(err, header).toMatchObject(failed('client_secret_basic', undefined, debug));
    }
    expect(clients.lookups).toEqual([]);
  });
  it('fails for a wrong secret, an unknown or disabled client, or a client registered for another method', async () => {
    const { auth, limit } = setup();
    const cases: Array<[string, string, string]> = [
      ['web', 'wrong', 'wrong or expired client secret'],
      ['nobody', 'web-secret', 'unknown client'],
      ['off', 'off-secret', 'client is disabled'],
      // The right secret by the other method is described (below); a wrong one is not.
      ['poster', 'wrong', 'client is registered for client_secret_post, not client_secret_basic'],
      ['signer', 'anything', 'client is registered for private_key_jwt, not client_secret_basic'],
      ['spa', 'anything', 'client is registered for none, not client_secret_basic'],
    ];
    for (const [id, secret, debug] of cases) {
      expect(await rejection(auth({ authorization: basicOf(id, secret), body: {} })), id).toMatchObject(failed('client_secret_basic', id, debug));
    }
    // Failures never spend a client's allowance.
    expect(limit.admitted).toEqual([]);
  });
  it('does not look up an id no client can have', async () => {
    const { auth, clients } = setup();
    expect(await rejection(auth({ authorization: basicOf('a+b', 'x'), body: {} }))).toMatchObject(failed('client_secret_basic', 'a b', 'unknown client'));
    expect(await rejection(auth({ authorization: basicOf('x'.repeat(201), 'x'), body: {} }))).toMatchObject(failed('client_secret_basic', 'x'.repeat(201), 'unknown client'));
    expect(clients.lookups).toEqual([]);
  });
  it('ignores an Authorization header of another scheme', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ authorization: 'Bearer abc', body: {} }))).toMatchObject(failed('unknown', undefined, 'no client authentication'));
    expect((await auth({ authorization: 'Bearer abc', body: { client_id: 'poster', client_secret: 'post-secret' } })).method).toBe('client_secret_post');
  });
});

describe('client_secret_post (RFC 6749 §2.3.1)', () => {
  it('authenticates with client_id and client_secret in the body', async () => {
    const { auth, clients, limit } = setup();
    expect(await auth({ body: { client_id: 'poster', client_secret: 'post-secret' } })).toEqual({ client: clients.byId.get('poster'), method: 'client_secret_post' });
    expect(limit.admitted).toEqual(['poster']);
  });
  it('fails without a challenge header for a wrong secret or another method\'s client', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ body: { client_id: 'poster', client_secret: 'nope' } }))).toMatchObject(failed('client_secret_post', 'poster', 'wrong or expired client secret'));
    expect(await rejection(auth({ body: { client_id: 'web', client_secret: 'wrong' } })))
      .toMatchObject(failed('client_secret_post', 'web', 'client is registered for client_secret_basic, not client_secret_post'));
  });
  it('is invalid_request without client_id', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ body: { client_secret: 'post-secret' } }))).toMatchObject({ error: 'invalid_request', status: 400, description: 'client_secret requires client_id' });
  });
  it('an empty client_secret is no client_secret (RFC 6749 §3.2)', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ body: { client_id: 'poster', client_secret: '' } })))
      .toMatchObject(failed('none', 'poster', 'client is registered for client_secret_post, not none'));
  });
  it('a repeated client_secret is invalid_request', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ body: { client_id: 'poster', client_secret: ['post-secret', 'post-secret'] } })))
      .toMatchObject({ error: 'invalid_request', description: 'the client_secret parameter must not be repeated (RFC 6749 §3.1)' });
  });
});

describe('more than one method at once (RFC 6749 §2.3)', () => {
  it('is invalid_request, before any client is looked up', async () => {
    const { auth, clients, jwtBody } = setup();
    const inputs: ClientAuthInput[] = [
      { authorization: basicOf('web', 'web-secret'), body: { client_id: 'web', client_secret: 'web-secret' } },
      { authorization: basicOf('web', 'web-secret'), body: await jwtBody() },
      { body: { client_id: 'signer', client_secret: 'x', ...(await jwtBody()) } },
    ];
    for (const input of inputs) {
      const err = await rejection(auth(input));
      expect(err).toBeInstanceOf(InvalidRequest);
      expect(err).toMatchObject({ error: 'invalid_request', description: 'more than one client authentication method used (RFC 6749 §2.3)' });
    }
    expect(clients.lookups).toEqual([]);
  });
  it('client_assertion_type without client_assertion is invalid_request', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ body: { client_id: 'spa', client_assertion_type: JWT_BEARER_ASSERTION_TYPE } })))
      .toMatchObject({ error: 'invalid_request', description: 'client_assertion_type without client_assertion' });
  });
});

describe('none: a public client identifies itself (RFC 6749 §2.3, OAuth 2.1 §2.4)', () => {
  it('is the client named by client_id where public clients are accepted', async () => {
    const { auth, clients, limit } = setup();
    expect(await auth({ body: { client_id: 'spa' } })).toEqual({ client: clients.byId.get('spa'), method: 'none' });
    expect(limit.admitted).toEqual(['spa']);
  });
  it('fails where an authenticated client is required, without spending the allowance', async () => {
    const { auth, limit } = setup();
    expect(await rejection(auth({ body: { client_id: 'spa' } }, false)))
      .toMatchObject(failed('none', 'spa', 'this endpoint requires an authenticated (confidential) client'));
    expect(limit.admitted).toEqual([]);
  });
  it('a confidential client cannot drop its credential', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ body: { client_id: 'web' } }))).toMatchObject(failed('none', 'web', 'client is registered for client_secret_basic, not none'));
  });
  it('no credential and no client_id at all: no client authentication', async () => {
    const { auth } = setup();
    const err = await rejection(auth({ body: {} }));
    expect(err).toBeInstanceOf(ClientAuthenticationFailed);
    expect(err).toMatchObject(failed('unknown', undefined, 'no client authentication'));
  });
});

describe('private_key_jwt (RFC 7523 §2.2, §3)', () => {
  it('authenticates a fresh assertion signed with a registered key, and remembers its jti until exp + leeway', async () => {
    const { auth, clients, jtis, clock, limit, jwtBody } = setup();
    expect(await auth({ body: await jwtBody() })).toEqual({ client: clients.byId.get('signer'), method: 'private_key_jwt' });
    const jtiHash = createHash('sha256').update('jti-1').digest('hex');
    expect([...jtis.used]).toEqual([[`signer ${jtiHash}`, new Date((epochSeconds(clock) + 60 + ASSERTION_CLOCK_TOLERANCE_SECONDS) * 1000)]]);
    expect(limit.admitted).toEqual(['signer']);
  });
  it('accepts the issuer as audience too, and a matching client_id parameter', async () => {
    const { auth, jwtBody } = setup();
    expect((await auth({ body: { ...(await jwtBody({ aud: ISSUER })), client_id: 'signer' } })).client.clientId).toBe('signer');
  });
  it('refuses a replayed assertion (§3 (7)) and gives back the count it took', async () => {
    const { auth, jwtBody, limit } = setup();
    const body = await jwtBody();
    await auth({ body });
    expect(await rejection(auth({ body }))).toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion replayed (jti already used)', REPLAYED));
    // Another assertion with the same jti is the same replay.
    expect(await rejection(auth({ body: await jwtBody({ aud: ISSUER }) }))).toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion replayed (jti already used)', REPLAYED));
    expect(limit.admitted).toEqual(['signer', 'signer', 'signer']);
    expect(limit.released).toEqual(['signer', 'signer']);
  });
  it('over the client\'s limit: 429 before the jti is spent', async () => {
    const { auth, jwtBody, jtis, limit } = setup();
    limit.refuse = true;
    expect(await rejection(auth({ body: await jwtBody() }))).toBeInstanceOf(TooManyRequests);
    expect(jtis.used.size).toBe(0);
  });
  it('fails for the assertion\'s envelope: type, size, not a JWT, iss, sub, client_id', async () => {
    const { auth, assertion, clients } = setup();
    const good = await assertion();
    const cases: Array<[Record<string, string>, string | undefined, string]> = [
      [{ client_assertion_type: 'urn:other', client_assertion: good }, undefined, `client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`],
      [{ client_assertion: good }, undefined, `client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`],
      [{ client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: 'x'.repeat(8193) }, undefined, 'client_assertion too long'],
      [{ client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: 'not.a.jwt' }, undefined, 'client_assertion is not a JWT'],
      [{ client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await assertion({ iss: undefined }) }, undefined, 'client_assertion has no iss'],
      [{ client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await assertion({ sub: 'other' }) }, 'signer', 'client_assertion sub must equal iss (the client_id)'],
      [{ client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: good, client_id: 'web' }, 'signer', 'client_id does not match the assertion iss'],
    ];
    for (const [body, clientId, debug] of cases) {
      expect(await rejection(auth({ body })), debug).toMatchObject(failed('private_key_jwt', clientId, debug));
    }
    expect(clients.lookups).toEqual([]);
  });
  it('fails for a client that is unknown, disabled, or registered for another method', async () => {
    const { auth, jwtBody } = setup();
    expect(await rejection(auth({ body: await jwtBody({ iss: 'nobody', sub: 'nobody' }) }))).toMatchObject(failed('private_key_jwt', 'nobody', 'unknown client'));
    expect(await rejection(auth({ body: await jwtBody({ iss: 'web', sub: 'web' }) })))
      .toMatchObject(failed('private_key_jwt', 'web', 'client is registered for client_secret_basic, not private_key_jwt'));
  });
  it('fails verification: another key, an HMAC or unsupported alg, expired, not yet valid, no exp or jti', async () => {
    const { auth, jwtBody, clock, jtis } = setup();
    const now = epochSeconds(clock);
    const cases: Array<[Promise<Record<string, string>>, RegExp]> = [
      [jwtBody({}, { key: stranger }), /^client_assertion rejected: ERR_JWS_SIGNATURE_VERIFICATION_FAILED: /],
      [jwtBody({}, { key: new Uint8Array(32) as unknown as CryptoKey, alg: 'HS256' }), /^client_assertion rejected: ERR_JOSE_ALG_NOT_ALLOWED: /],
      [jwtBody({ nbf: now + ASSERTION_CLOCK_TOLERANCE_SECONDS + 1 }), /^client_assertion rejected: ERR_JWT_CLAIM_VALIDATION_FAILED: "nbf" claim timestamp check failed$/],
      [jwtBody({ exp: undefined }), /^client_assertion rejected: ERR_JWT_CLAIM_VALIDATION_FAILED: missing required "exp" claim$/],
      [jwtBody({ jti: undefined }), /^client_assertion rejected: ERR_JWT_CLAIM_VALIDATION_FAILED: missing required "jti" claim$/],
    ];
    for (const [body, debug] of cases) {
      expect(await rejection(auth({ body: await body })), String(debug)).toMatchObject(failed('private_key_jwt', 'signer', debug));
    }
    expect(jtis.used.size).toBe(0);
  });
  it('accepts the issuer or the token endpoint URL as the one audience, a string or a list of one (draft-ietf-oauth-rfc7523bis)', async () => {
    const { auth, jwtBody } = setup();
    const audiences = [ISSUER, [ISSUER], TOKEN_ENDPOINT, [TOKEN_ENDPOINT]];
    for (const [i, aud] of audiences.entries()) {
      expect((await auth({ body: await jwtBody({ aud, jti: `aud-${i}` }) })).method, JSON.stringify(aud)).toBe('private_key_jwt');
    }
  });
  it('refuses any other audience: another endpoint URL, another server, a list of several, none (the audience injection attack)', async () => {
    const { auth, jwtBody, jtis } = setup();
    const expected = `the issuer identifier "${ISSUER}" or the token endpoint URL "${TOKEN_ENDPOINT}"`;
    const cases: Array<[unknown, string]> = [
      [`${ISSUER}/introspect`, `client_assertion aud must be ${expected} (got "${ISSUER}/introspect")`],
      [`${ISSUER}/par`, `client_assertion aud must be ${expected} (got "${ISSUER}/par")`],
      [`${ISSUER}/`, `client_assertion aud must be ${expected} (got "${ISSUER}/")`],
      ['https://elsewhere.example.com', `client_assertion aud must be ${expected} (got "https://elsewhere.example.com")`],
      [[42], `client_assertion aud must be ${expected} (got 42)`],
      [[ISSUER, 'https://attacker.example.com'], 'client_assertion aud must be one value, not a list of 2 (draft-ietf-oauth-rfc7523bis)'],
      [[ISSUER, TOKEN_ENDPOINT], 'client_assertion aud must be one value, not a list of 2 (draft-ietf-oauth-rfc7523bis)'],
      [[], 'client_assertion aud must be one value, not a list of 0 (draft-ietf-oauth-rfc7523bis)'],
      [undefined, 'client_assertion has no aud'],
      [`https://${'x'.repeat(300)}`, `client_assertion aud must be ${expected} (got ${JSON.stringify(`https://${'x'.repeat(300)}`).slice(0, 200)})`],
    ];
    for (const [aud, debug] of cases) {
      expect(await rejection(auth({ body: await jwtBody({ aud }) })), JSON.stringify(aud)).toMatchObject(failed('private_key_jwt', 'signer', debug));
    }
    expect(jtis.used.size).toBe(0);
  });
  it('refuses the token endpoint URL when the server accepts the issuer alone', async () => {
    const { auth, jwtBody, deps } = setup();
    deps.assertionAudience = { issuer: ISSUER };
    expect(await rejection(auth({ body: await jwtBody({ aud: TOKEN_ENDPOINT }) })))
      .toMatchObject(failed('private_key_jwt', 'signer', `client_assertion aud must be the issuer identifier "${ISSUER}" (got "${TOKEN_ENDPOINT}")`));
    expect((await auth({ body: await jwtBody({ aud: ISSUER }) })).method).toBe('private_key_jwt');
  });
  it('accepts an exp within the clock leeway', async () => {
    const { auth, jwtBody, clock } = setup();
    expect((await auth({ body: await jwtBody({ exp: epochSeconds(clock) - ASSERTION_CLOCK_TOLERANCE_SECONDS + 1 }) })).method).toBe('private_key_jwt');
  });
  it('accepts an assertion valid for one hour by default (Authlib\'s), and keeps its jti until exp: a replay within the hour is refused', async () => {
    const { auth, jwtBody, jtis, clock } = setup();
    expect(DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS).toBe(3600);
    const start = epochSeconds(clock);
    const body = await jwtBody({}, { lifetime: 3600 });
    expect((await auth({ body })).method).toBe('private_key_jwt');
    expect([...jtis.used.values()]).toEqual([new Date((start + 3600 + ASSERTION_CLOCK_TOLERANCE_SECONDS) * 1000)]);
    clock.advance(3599);
    expect(await rejection(auth({ body }))).toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion replayed (jti already used)', REPLAYED));
  });
  it('refuses an assertion valid for longer than the setting (plus the leeway), saying so', async () => {
    const { auth, jwtBody, deps } = setup();
    const longest = DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS + ASSERTION_CLOCK_TOLERANCE_SECONDS;
    expect((await auth({ body: await jwtBody({}, { lifetime: longest }) })).method).toBe('private_key_jwt');
    expect(await rejection(auth({ body: await jwtBody({ jti: 'jti-2' }, { lifetime: longest + 1 }) })))
      .toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion exp is more than 3600s away',
        'client_assertion is valid for too long: its exp is 3631 seconds away, and this server accepts at most 3600 seconds (plus 30 of leeway)'));
    deps.maxAssertionLifetime = 300;
    expect((await auth({ body: await jwtBody({ jti: 'jti-3' }, { lifetime: 330 }) })).method).toBe('private_key_jwt');
    expect(await rejection(auth({ body: await jwtBody({ jti: 'jti-4' }, { lifetime: 3600 }) })))
      .toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion exp is more than 300s away',
        'client_assertion is valid for too long: its exp is 3600 seconds away, and this server accepts at most 300 seconds (plus 30 of leeway)'));
  });
  it('refuses a jti that is not a string of 1 to 256 characters', async () => {
    const { auth, jwtBody, jtis } = setup();
    for (const jti of ['', 'j'.repeat(257), 42]) {
      expect(await rejection(auth({ body: await jwtBody({ jti }) })), String(jti)).toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion jti must be a non-empty string'));
    }
    expect((await auth({ body: await jwtBody({ jti: 'j'.repeat(256) }) })).method).toBe('private_key_jwt');
    expect(jtis.used.size).toBe(1);
  });
  it('a client with no keys authenticates nothing', async () => {
    const { auth, clients, jwtBody } = setup();
    const keyless = { ...clients.byId.get('signer')!, metadata: { ...clients.byId.get('signer')!.metadata, jwks: undefined } };
    clients.byId.set('signer', keyless);
    expect(await rejection(auth({ body: await jwtBody() }))).toMatchObject(failed('private_key_jwt', 'signer', 'client_assertion rejected: error: client has no keys'));
  });
});

describe('errors that say why: an error_description once the request proved the credential (RFC 6749 §5.2)', () => {
  const basicTold = 'this client is registered for client_secret_basic: send client_id and client_secret in the Authorization header (HTTP Basic), not in the form body';
  const postTold = 'this client is registered for client_secret_post: send client_id and client_secret in the form body, not in the Authorization header';
  it('the right secret by client_secret_post for a client_secret_basic client (openid-client\'s discovery(issuer, id, secret)): told, with a Basic challenge', async () => {
    const { auth, limit } = setup();
    expect(await rejection(auth({ body: { client_id: 'web', client_secret: 'web-secret' } })))
      .toMatchObject(failed('client_secret_post', 'web', 'client is registered for client_secret_basic, not client_secret_post', basicTold, true));
    expect(limit.admitted).toEqual([]);
  });
  it('the right secret by Basic for a client_secret_post client: told', async () => {
    const { auth } = setup();
    expect(await rejection(auth({ authorization: basicOf('poster', 'post-secret'), body: {} })))
      .toMatchObject(failed('client_secret_basic', 'poster', 'client is registered for client_secret_post, not client_secret_basic', postTold));
  });
  it('stays bare when nothing is proven: a wrong or expired secret by the other method, a disabled client, an unknown one, a secret for a key or public client', async () => {
    const { auth, clock } = setup();
    const bare: Array<[ClientAuthInput, string, string, string]> = [
      [{ body: { client_id: 'web', client_secret: 'wrong' } }, 'client_secret_post', 'web', 'client is registered for client_secret_basic, not client_secret_post'],
      [{ authorization: basicOf('poster', 'wrong'), body: {} }, 'client_secret_basic', 'poster', 'client is registered for client_secret_post, not client_secret_basic'],
      [{ body: { client_id: 'off', client_secret: 'off-secret' } }, 'client_secret_post', 'off', 'client is disabled'],
      [{ body: { client_id: 'nobody', client_secret: 'web-secret' } }, 'client_secret_post', 'nobody', 'unknown client'],
      [{ body: { client_id: 'signer', client_secret: 'web-secret' } }, 'client_secret_post', 'signer', 'client is registered for private_key_jwt, not client_secret_post'],
      [{ body: { client_id: 'spa', client_secret: 'web-secret' } }, 'client_secret_post', 'spa', 'client is registered for none, not client_secret_post'],
      [{ body: { client_id: 'web' } }, 'none', 'web', 'client is registered for client_secret_basic, not none'],
    ];
    for (const [input, method, id, debug] of bare) expect(await rejection(auth(input)), debug).toMatchObject(failed(method, id, debug));
    // The old secret of a rotation, once expired, proves nothing either.
    clock.advance(3600);
    expect(await rejection(auth({ body: { client_id: 'rotating', client_secret: 'old-secret' } })))
      .toMatchObject(failed('client_secret_post', 'rotating', 'client is registered for client_secret_basic, not client_secret_post'));
  });
  it('an expired assertion, signed by the client: told how far past its exp', async () => {
    const { auth, jwtBody, clock, jtis } = setup();
    expect(await rejection(auth({ body: await jwtBody({ exp: epochSeconds(clock) - 120 }) })))
      .toMatchObject(failed('private_key_jwt', 'signer', /^client_assertion rejected: ERR_JWT_EXPIRED: /,
        "client_assertion has expired: its exp is 120 seconds before this server's time, more than the 30 seconds of leeway (make a new assertion for each request; check the client's clock)"));
    // Signed by another key: the same expiry is not described.
    expect(await rejection(auth({ body: await jwtBody({ exp: epochSeconds(clock) - 120 }, { key: stranger }) })))
      .toMatchObject(failed('private_key_jwt', 'signer', /^client_assertion rejected: ERR_JWS_SIGNATURE_VERIFICATION_FAILED: /));
    expect(jtis.used.size).toBe(0);
  });
  it('an unknown kid: told when one of the client\'s keys signed the assertion, bare when none did', async () => {
    const { auth, jwtBody, jtis } = setup();
    const told = "the kid in the client_assertion header names no key registered for this client, though one of its keys signed it (send that key's kid)";
    expect(await rejection(auth({ body: await jwtBody({}, { kid: 'rotated-away' }) })))
      .toMatchObject(failed('private_key_jwt', 'signer', /^client_assertion rejected: ERR_JWKS_NO_MATCHING_KEY: /, told));
    // Two registered keys without a kid: each is tried.
    expect(await rejection(auth({ body: await jwtBody({ iss: 'kidless', sub: 'kidless' }) })))
      .toMatchObject(failed('private_key_jwt', 'kidless', /^client_assertion rejected: ERR_JWKS_NO_MATCHING_KEY: /, told));
    for (const iss of ['signer', 'kidless']) {
      expect(await rejection(auth({ body: await jwtBody({ iss, sub: iss }, { kid: 'rotated-away', key: stranger }) })), iss)
        .toMatchObject(failed('private_key_jwt', iss, /^client_assertion rejected: ERR_JWKS_NO_MATCHING_KEY: /));
    }
    expect(jtis.used.size).toBe(0);
  });
  it('an assertion for an unknown client, or for a secret client, stays bare', async () => {
    const { auth, jwtBody } = setup();
    expect(await rejection(auth({ body: await jwtBody({ iss: 'nobody', sub: 'nobody' }, { kid: 'rotated-away' }) }))).toMatchObject(failed('private_key_jwt', 'nobody', 'unknown client'));
    expect(await rejection(auth({ body: await jwtBody({ iss: 'web', sub: 'web' }) })))
      .toMatchObject(failed('private_key_jwt', 'web', 'client is registered for client_secret_basic, not private_key_jwt'));
  });
  it('every description is what RFC 6749 §5.2 allows in error_description', async () => {
    const { auth, jwtBody, clock } = setup();
    const body = await jwtBody({}, { lifetime: 60 });
    await auth({ body });
    const refusals: ClientAuthInput[] = [
      { body: { client_id: 'web', client_secret: 'web-secret' } },
      { authorization: basicOf('poster', 'post-secret'), body: {} },
      { body: await jwtBody({ jti: 'long' }, { lifetime: 7200 }) },
      { body: await jwtBody({ jti: 'kid' }, { kid: 'rotated-away' }) },
      { body },
      { body: await jwtBody({ jti: 'old', exp: epochSeconds(clock) - 120 }) },
    ];
    for (const refusal of refusals) {
      const err = await rejection(auth(refusal));
      expect(err.description).toMatch(/^client authentication failed: /);
      expect(err.description).toMatch(ERROR_DESCRIPTION);
    }
  });
});

describe('workload_identity (draft-ietf-oauth-spiffe-client-auth)', () => {
  const K8S = 'https://k8s.example.com';
  const SA = 'system:serviceaccount:payments:api';
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  /** An external issuer's token as the port sees it: this fake trusts K8S and verifies nothing else. */
  const workloadToken = (claims: Record<string, unknown> = {}) => `${b64({ alg: 'RS256' })}.${b64({ iss: K8S, sub: SA, jti: 'w-1', exp: 1, ...claims })}.sig`;

  function workloadSetup() {
    const base = setup();
    base.clients.byId.set('payments-api', testClient('payments-api', { token_endpoint_auth_method: 'workload_identity', workload_identity: { issuer: K8S, subject: SA } }));
    const spent = new Set<string>();
    const calls: string[] = [];
    base.deps.externalTokens = {
      async verify(token, use, options = {}) {
        calls.push(use);
        const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iss: string; sub: string; jti: string };
        if (claims.iss !== K8S) throw new ExternalTokenRejected('issuer not trusted');
        const verified = { issuer: claims.iss, issuerName: 'k8s', subject: claims.sub, claims, exp: 1 };
        await options.beforeSpend?.(verified);
        if (spent.has(claims.jti)) throw new ExternalTokenRejected('jti already used', K8S);
        spent.add(claims.jti);
        return verified;
      },
    };
    const body = (token = workloadToken(), extra: Record<string, string> = {}) => ({ client_id: 'payments-api', client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: token, ...extra });
    return { ...base, spent, calls, body };
  }

  it('authenticates the client whose workload_identity the verified token names, spending its jti', async () => {
    const { auth, body, calls, limit, spent } = workloadSetup();
    expect(await auth({ body: body() })).toMatchObject({ method: 'workload_identity', client: { clientId: 'payments-api' } });
    expect(calls).toEqual(['client_assertion']);
    expect(limit.admitted).toEqual(['payments-api']);
    expect(spent.has('w-1')).toBe(true);
    // draft-ietf-oauth-spiffe-client-auth's own assertion type too.
    expect(await auth({ body: body(workloadToken({ jti: 'w-2' }), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe' }) })).toMatchObject({ method: 'workload_identity' });
  });

  it('is the one method presented for an external token; a client\'s own assertion stays private_key_jwt', async () => {
    const { auth, body, jwtBody } = workloadSetup();
    // A private_key_jwt assertion with a client_id is not mistaken for a workload's token.
    expect((await auth({ body: { ...(await jwtBody()), client_id: 'signer' } })).method).toBe('private_key_jwt');
    expect(await rejection(auth({ body: body(), authorization: basicOf('web', 'web-secret') }))).toBeInstanceOf(InvalidRequest);
  });

  it('needs client_id (the token\'s iss is its issuer) and a JWT client assertion type', async () => {
    const { auth, body } = workloadSetup();
    const { client_id: _omitted, ...noClientId } = body();
    expect(await rejection(auth({ body: noClientId }))).toMatchObject({ error: 'invalid_request' });
    expect(await rejection(auth({ body: body(undefined, { client_assertion_type: 'urn:other' }) })))
      .toMatchObject(failed('workload_identity', 'payments-api', /^client_assertion_type must be/));
  });

  it('refuses another subject or issuer before the jti is spent or the client admitted', async () => {
    const { auth, body, limit, spent } = workloadSetup();
    expect(await rejection(auth({ body: body(workloadToken({ sub: 'system:serviceaccount:payments:batch' })) })))
      .toMatchObject(failed('workload_identity', 'payments-api', 'workload token sub is not the client\'s workload_identity subject'));
    expect(await rejection(auth({ body: body(workloadToken({ iss: 'https://other.example.com' })) })))
      .toMatchObject(failed('workload_identity', 'payments-api', 'workload token rejected: issuer not trusted'));
    expect(spent.size).toBe(0);
    expect(limit.admitted).toEqual([]);
  });

  it('admits the client before the jti is spent, and gives the count back for a replay', async () => {
    const { auth, body, limit, spent } = workloadSetup();
    await auth({ body: body() });
    expect(await rejection(auth({ body: body() }))).toMatchObject(failed('workload_identity', 'payments-api', 'workload token rejected: jti already used'));
    expect(limit.admitted).toEqual(['payments-api', 'payments-api']);
    expect(limit.released).toEqual(['payments-api']);
    limit.refuse = true;
    expect(await rejection(auth({ body: body(workloadToken({ jti: 'w-3' })) }))).toBeInstanceOf(TooManyRequests);
    expect(spent.has('w-3')).toBe(false);
  });

  it('refuses a client registered for another method, bare', async () => {
    const { auth, body } = workloadSetup();
    expect(await rejection(auth({ body: { ...body(), client_id: 'web' } })))
      .toMatchObject(failed('workload_identity', 'web', 'client is registered for client_secret_basic, not workload_identity'));
  });

  it('refuses every workload token when no issuer is trusted (the default)', async () => {
    const { auth, body, deps } = workloadSetup();
    deps.externalTokens = undefined;
    expect(await rejection(auth({ body: body() }))).toMatchObject(failed('workload_identity', 'payments-api', 'workload token rejected: no trusted issuer is configured'));
  });
});
