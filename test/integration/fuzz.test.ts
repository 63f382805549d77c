import fc from 'fast-check';
import { sql } from 'kysely';
import type { InjectOptions, LightMyRequestResponse as InjectResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import { internalRange, parseIp } from '../../src/platform/outbound/addresses.js';
import { UserRepository } from '../../src/users/user-store.js';
import { createPasswordHasher } from '../../src/users/passwords.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';

/**
 * Random and hostile requests at every public endpoint: wrong methods and content types,
 * repeated parameters, broken percent-encoding, NUL bytes, oversized values, JSON where a form
 * is expected, random headers and credentials. Every answer must be an expected 2xx/3xx or a
 * well-formed 4xx (the `{error, error_description}` JSON on the OAuth and JSON endpoints),
 * never a 5xx or a hang; the database must hold the same rows afterwards (audit events and the
 * login throttle's counters aside); and the server must still serve good requests.
 *
 * To cover a new endpoint, add a row to ENDPOINTS (and, if it must never see valid credentials
 * because a valid request would change state, say `validCredential: false`).
 */

/** Runs per endpoint; FUZZ_RUNS=2000 for a longer hunt by hand. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 250);
const ADMIN = 'admin-credential-for-the-fuzz-test-0123456789';
const IAT = 'initial-access-token-for-the-fuzz-test-012345';
const PASSWORD = 'correct horse battery staple';
const CLIENT_ID = 'fuzz-svc';
let clientSecret = '';

/** How a 4xx answer must look: `oauth` = JSON `{error, error_description}`; `page` = that JSON or an HTML page. */
type ErrorShape = 'oauth' | 'page';

interface FuzzEndpoint {
  /** Path; `:id` is replaced by a random (never existing) identifier, sometimes raw and badly percent-encoded. */
  path: string;
  /** Methods the endpoint serves (others are tried too, less often). */
  methods: string[];
  /** Parameter names it reads (form, query or JSON members). */
  params: string[];
  /** Statuses a request may succeed with. */
  success: number[];
  errors: ErrorShape;
  /** The valid credential of this endpoint, when fuzzing with it cannot change state. */
  validCredential?: () => string;
  /** The body type the endpoint takes: sent more often than the others, so requests get past the parser to the handler. */
  body?: 'form' | 'json';
  /** A browser form: "valid" credentials are a matching CSRF cookie and `csrf` field (double submit). */
  csrf?: boolean;
  /** RFC 6749 §3.1: a repeated parameter is invalid_request; the params that must be checked so, with a good credential. */
  singleValued?: string[];
}

const adminAuth = () => `Bearer ${ADMIN}`;
const clientAuth = () => basic(CLIENT_ID, clientSecret);

/** The table of endpoints. /authorize, /par and /userinfo join it when they exist. */
const ENDPOINTS: FuzzEndpoint[] = [
  { path: '/token', body: 'form', methods: ['POST'], params: ['grant_type', 'scope', 'resource', 'client_id', 'client_secret', 'client_assertion', 'client_assertion_type'], success: [200], errors: 'oauth', validCredential: clientAuth, singleValued: ['grant_type', 'scope', 'client_id'] },
  { path: '/introspect', body: 'form', methods: ['POST'], params: ['token', 'token_type_hint', 'client_id', 'client_secret'], success: [200], errors: 'oauth', validCredential: clientAuth, singleValued: ['token', 'token_type_hint'] },
  { path: '/revoke', body: 'form', methods: ['POST'], params: ['token', 'token_type_hint', 'client_id', 'client_secret'], success: [200], errors: 'oauth', validCredential: clientAuth, singleValued: ['token', 'token_type_hint'] },
  // A valid initial access token with a random body could register a client: fuzzed without one.
  { path: '/register', body: 'json', methods: ['POST'], params: ['redirect_uris', 'grant_types', 'scope', 'token_endpoint_auth_method', 'jwks', 'jwks_uri', 'backchannel_logout_uri', 'client_name'], success: [201], errors: 'oauth' },
  { path: '/register/:id', body: 'json', methods: ['GET', 'PUT', 'DELETE'], params: ['client_id', 'client_secret', 'redirect_uris', 'grant_types'], success: [200, 204], errors: 'oauth' },
  { path: '/jwks', methods: ['GET'], params: [], success: [200, 304], errors: 'oauth' },
  { path: '/.well-known/jwks.json', methods: ['GET'], params: [], success: [200, 304], errors: 'oauth' },
  { path: '/.well-known/openid-configuration', methods: ['GET'], params: [], success: [200, 304], errors: 'oauth' },
  { path: '/.well-known/oauth-authorization-server', methods: ['GET'], params: [], success: [200, 304], errors: 'oauth' },
  { path: '/authorize', body: 'form', methods: ['GET', 'POST'], params: ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'nonce', 'prompt', 'max_age', 'login_hint', 'response_mode', 'request_uri', 'request', 'resource'], success: [200, 303], errors: 'page' },
  { path: '/interaction/:id', body: 'form', methods: ['GET', 'POST'], params: ['csrf', 'decision'], success: [200, 303], errors: 'page', csrf: true },
  { path: '/par', body: 'form', methods: ['POST'], params: ['response_type', 'client_id', 'client_secret', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'request_uri'], success: [201], errors: 'oauth', validCredential: clientAuth, singleValued: ['response_type', 'redirect_uri', 'state'] },
  { path: '/userinfo', body: 'form', methods: ['GET', 'POST'], params: ['access_token'], success: [200], errors: 'oauth' },
  { path: '/login', body: 'form', methods: ['GET', 'POST'], params: ['login', 'password', 'csrf', 'return_to'], success: [200, 303], errors: 'page', csrf: true },
  { path: '/logout', body: 'form', methods: ['GET', 'POST'], params: ['csrf', 'decision', 'id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state'], success: [200, 303], errors: 'page', csrf: true },
  { path: '/', methods: ['GET'], params: [], success: [200, 303], errors: 'page' },
  // The device flow (RFC 8628): the device's request, and the verification pages (no session: sign in first).
  { path: '/device_authorization', body: 'form', methods: ['POST'], params: ['client_id', 'client_secret', 'scope', 'resource'], success: [], errors: 'oauth' },
  { path: '/device', body: 'form', methods: ['GET', 'POST'], params: ['csrf', 'user_code'], success: [303], errors: 'page', csrf: true },
  { path: '/device/decision', body: 'form', methods: ['POST'], params: ['csrf', 'user_code', 'decision', 'shown_to'], success: [303], errors: 'page', csrf: true },
  // Multi-factor sign-in (src/capabilities/mfa/routes.ts): without a session every page sends the browser to sign in.
  { path: '/login/passkey/options', body: 'json', methods: ['POST'], params: ['csrf'], success: [200], errors: 'oauth', csrf: true },
  { path: '/login/passkey', body: 'json', methods: ['POST'], params: ['csrf', 'return_to', 'response'], success: [200], errors: 'oauth', csrf: true },
  { path: '/login/factor', methods: ['GET'], params: ['return_to', 'acr'], success: [303], errors: 'page' },
  { path: '/login/factor/totp', body: 'form', methods: ['POST'], params: ['csrf', 'code', 'return_to', 'acr'], success: [303], errors: 'page', csrf: true },
  { path: '/login/factor/recovery', body: 'form', methods: ['POST'], params: ['csrf', 'code', 'return_to', 'acr'], success: [303], errors: 'page', csrf: true },
  { path: '/login/factor/passkey/options', body: 'json', methods: ['POST'], params: ['csrf'], success: [], errors: 'oauth', csrf: true },
  { path: '/login/factor/passkey', body: 'json', methods: ['POST'], params: ['csrf', 'return_to', 'acr', 'response'], success: [], errors: 'oauth', csrf: true },
  { path: '/account', methods: ['GET'], params: ['notice'], success: [303], errors: 'page' },
  { path: '/account/totp', body: 'form', methods: ['GET', 'POST'], params: ['csrf', 'code', 'return_to', 'acr'], success: [303], errors: 'page', csrf: true },
  { path: '/account/recovery-codes', body: 'form', methods: ['GET', 'POST'], params: ['csrf', 'return_to'], success: [303], errors: 'page', csrf: true },
  { path: '/account/passkeys/options', body: 'json', methods: ['POST'], params: ['csrf'], success: [], errors: 'oauth', csrf: true },
  { path: '/account/passkeys', body: 'json', methods: ['POST'], params: ['csrf', 'name', 'return_to', 'acr', 'response'], success: [], errors: 'oauth', csrf: true },
  { path: '/account/passkeys/:id/remove', body: 'form', methods: ['POST'], params: ['csrf'], success: [303], errors: 'page', csrf: true },
  { path: '/account/totp/remove', body: 'form', methods: ['POST'], params: ['csrf'], success: [303], errors: 'page', csrf: true },
  { path: '/account/apps/:id/withdraw', body: 'form', methods: ['POST'], params: ['csrf'], success: [303], errors: 'page', csrf: true },
  { path: '/healthz', methods: ['GET'], params: [], success: [200], errors: 'oauth' },
  { path: '/readyz', methods: ['GET'], params: [], success: [200], errors: 'oauth' },
  { path: '/metrics', methods: ['GET'], params: [], success: [200], errors: 'oauth' },
  { path: '/admin/clients', body: 'json', methods: ['GET', 'POST'], params: ['client_id', 'redirect_uris', 'grant_types', 'scope'], success: [200], errors: 'oauth' },
  // With the admin credential: ids never exist, so nothing can change.
  { path: '/admin/clients/:id', body: 'json', methods: ['GET', 'PUT', 'PATCH', 'DELETE'], params: ['redirect_uris', 'grant_types', 'scope'], success: [], errors: 'oauth', validCredential: adminAuth },
  { path: '/admin/clients/:id/rotate-secret', body: 'json', methods: ['POST'], params: ['overlap_seconds'], success: [], errors: 'oauth', validCredential: adminAuth },
  { path: '/admin/clients/:id/disable', methods: ['POST'], params: [], success: [], errors: 'oauth', validCredential: adminAuth },
  { path: '/admin/users/:id/mfa', methods: ['GET'], params: [], success: [], errors: 'oauth', validCredential: adminAuth },
  { path: '/admin/users/:id/mfa/reset', methods: ['POST'], params: [], success: [], errors: 'oauth', validCredential: adminAuth },
  { path: '/admin/audit', methods: ['GET'], params: ['client_id', 'sub', 'event', 'jti', 'since', 'until', 'limit', 'cursor'], success: [200], errors: 'oauth', validCredential: adminAuth },
];

const ALL_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/** Values a hostile client sends: random text, NUL bytes, control and non-BMP characters, huge or empty strings, and some plausible ones. */
const hostileValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\uD800', '%00', '%', '%zz', '../../etc/passwd', "' or 1=1 --", '{"a":1}', '[]', 'null', '\r\nx-injected: 1',
    'client_credentials', 'authorization_code', 'refresh_token', CLIENT_ID, 'access_token', 'refresh_token', '2026-11-23T10:00:00Z', '0', '-1', '1001', '99999999999999999999'),
  fc.nat({ max: 70_000 }).map((n) => 'x'.repeat(n)),
);

/** IPv4 addresses worth trying: internal ones of every range, and public ones. */
const IPV4 = ['127.0.0.1', '127.255.255.254', '0.0.0.0', '10.0.0.1', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.254.169.254',
  '224.0.0.1', '255.255.255.255', '192.0.2.1', '8.8.8.8', '93.184.216.34'];
const octets = (ip: string) => ip.split('.').map(Number);
const asNumber = (ip: string) => octets(ip).reduce((n, o) => n * 256 + o, 0);
/** Every notation WHATWG URL parsing reads as an IPv4 address, and some it does not. */
const ipv4Notation = fc.tuple(fc.oneof(fc.constantFrom(...IPV4), fc.nat({ max: 0xffffffff }).map((n) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'))), fc.nat({ max: 9 }))
  .map(([ip, form]) => {
    const o = octets(ip);
    switch (form) {
      case 0: return ip;
      case 1: return String(asNumber(ip)); // 2130706433
      case 2: return o.map((x) => `0${x.toString(8)}`).join('.'); // 0177.00.00.01
      case 3: return `0x${asNumber(ip).toString(16)}`; // 0x7f000001
      case 4: return `0x${o[0]!.toString(16)}.${(o[1]! << 16) + (o[2]! << 8) + o[3]!}`; // 0x7f.1
      case 5: return `${o[0]}.${(o[1]! << 16) + (o[2]! << 8) + o[3]!}`; // 127.1
      case 6: return `${o[0]}.${o[1]}.${(o[2]! << 8) + o[3]!}`; // 127.0.1
      case 7: return `${ip}.`; // trailing dot
      case 8: return ip.split('').map((c) => `%${c.charCodeAt(0).toString(16)}`).join(''); // percent-encoded
      default: return `0${asNumber(ip).toString(8)}`; // 017700000001
    }
  });
/** IPv6 literals: loopback, unspecified, mapped and translated IPv4 in both spellings, NAT64, 6to4, link-local with a zone, unique-local, public. */
const ipv6Literal = fc.oneof(
  fc.constantFrom('::1', '::', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::ffff:0:7f00:1', '64:ff9b::7f00:1',
    '64:ff9b::808:808', '2002:7f00:1::', '2002:808:808::1', 'fe80::1', 'fe80::1%25eth0', 'fd00::1', 'fc00::', 'ff02::1', '::127.0.0.1', '2001:db8::1',
    '2606:4700:4700::1111', '2001::1', '::ffff:8.8.8.8'),
  fc.constantFrom(...IPV4).map((ip) => `::ffff:${ip}`),
).map((ip) => `[${ip}]`);
const uriHost = fc.oneof(
  ipv4Notation, ipv6Literal,
  fc.constantFrom('localhost', 'LOCALHOST.', 'localhost.', 'app.localhost', 'rp.example', 'RP.Example.', '127.0.0.1.nip.io', 'metadata.google.internal',
    'xn--nxasmq6b.example', '', '[', '[::1', '::1', 'a..b', '-x-.example', 'host with space', 'evil.example\u0000', '%00', '0', '00'),
  fc.string({ maxLength: 12 }),
);
/** URIs of every shape a registrant may send as a jwks_uri or backchannel_logout_uri. */
const hostileUri = fc.oneof(
  fc.tuple(
    fc.constantFrom('https://', 'http://', 'HTTPS://', 'HtTp://', 'https:', 'https:/', 'https:///', 'ftp://', 'file://', 'gopher://', 'ws://', 'javascript:', 'data:', '//', ''),
    fc.constantFrom('', 'user@', 'user:pass@', '@', ':@', 'a%40b@'),
    uriHost,
    fc.constantFrom('', ':443', ':80', ':0', ':8080', ':65535', ':65536', ':-1', ':x'),
    fc.constantFrom('', '/', '/jwks', '/.well-known/jwks.json?x=1', '/bc#frag', '/%00', '/..%2f..%2fetc', '?a=b', '#', '/a\\b'),
  ).map((parts) => parts.join('')),
  hostileValue,
);

/**
 * Why the outbound fetcher could not reach `uri` (undefined: it might): a test-side oracle,
 * written apart from OutboundPolicy (only the unit-tested table of address ranges is shared),
 * for what must never be registered. The fuzz app's issuer is
 * on loopback but nothing is allow-listed, so every loopback target is refused and http with it.
 */
function reachableProblem(uri: string): string | undefined {
  let url: URL;
  try { url = new URL(uri); } catch { return 'not a URL'; }
  if (url.protocol !== 'https:') return `scheme ${url.protocol}`;
  if (url.username || url.password) return 'credentials';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback name';
  const ip = parseIp(host);
  const range = ip && internalRange(ip);
  return range ? `${host} is ${range}` : undefined;
}

/** Percent-encodes text; lone surrogates (which cannot be encoded) become '?'. */
const enc = (text: string) => encodeURIComponent(text.replace(/[\uD800-\uDFFF]/g, '?'));

const headerSafe = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });

const credential = (ep: FuzzEndpoint) => fc.oneof(
  fc.constant(undefined),
  headerSafe,
  headerSafe.map((s) => `Bearer ${s}`),
  headerSafe.map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
  fc.constantFrom('Basic', 'Bearer', 'Basic !!!', `Basic ${Buffer.from('a\u0000b:x').toString('base64')}`, `Basic ${Buffer.from('a%00b:x').toString('base64')}`, `Basic ${Buffer.from(':').toString('base64')}`, `Basic ${Buffer.from(`${CLIENT_ID}:wrong`).toString('base64')}`, `Bearer ${ADMIN}x`),
  ...(ep.validCredential || ep.csrf ? [fc.constant('valid'), fc.constant('valid')] : []),
);

const CSRF = 'fuzz-csrf-token-'.padEnd(43, 'x'); // 43 characters, as the server's own

/** A body as bytes on the wire: a form (repeated names included), raw junk, JSON, broken percent-encoding, or nothing. */
const body = (ep: FuzzEndpoint) => {
  const names = fc.oneof(fc.constantFrom(...(ep.params.length > 0 ? ep.params : ['x'])), fc.string({ maxLength: 12 }));
  const pairs = fc.array(fc.tuple(names, hostileValue), { maxLength: 6 });
  return fc.oneof(
    fc.constant(undefined),
    pairs.map((ps) => ps.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')),
    pairs.map((ps) => ps.map(([k, v]) => `${k}=${v}`).join('&')), // not encoded at all
    fc.constantFrom('grant_type=%E0%A4%A', 'token=%', '%%%=%%%', 'a=%ZZ&b=%', '=&=&&', 'grant_type', 'client_id=%00', 'token=a%00b',
      'login=a%00b&password=x', 'grant_type=client_credentials&client_id=a%00&client_secret=x', 'client_id=%00&sub=%00&jti=%00'),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.dictionary(names, fc.oneof(hostileValue, fc.array(hostileValue, { maxLength: 3 }), fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 5 }).map((o) => JSON.stringify(o)),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.nat({ max: 80_000 }).map((n) => `grant_type=${'a'.repeat(n)}`),
  );
};

const contentType = (ep: FuzzEndpoint) => fc.oneof(
  { weight: ep.body ? 4 : 0, arbitrary: fc.constant(ep.body === 'json' ? 'application/json' : 'application/x-www-form-urlencoded') },
  { weight: 6, arbitrary: anyContentType },
);

const anyContentType = fc.oneof(
  fc.constantFrom(undefined, 'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'application/xml',
    'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=utf-16', 'application/json; charset=latin1',
    'APPLICATION/X-WWW-FORM-URLENCODED', 'application/x-www-form-urlencoded, application/json', ';', '*/*'),
  headerSafe,
);

const path = (ep: FuzzEndpoint) => fc.oneof(
  fc.string({ minLength: 1, maxLength: 30 }).map((id) => enc(`fz-${id}`)),
  fc.constantFrom('fz-%E0%A4%A', 'fz-%', 'fz-%00', 'fz-a%2Fb', `fz-${'x'.repeat(300)}`),
).chain((id) => fc.tuple(fc.constant(ep.path.replace(':id', id)), fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(fc.constantFrom(...(ep.params.length > 0 ? ep.params : ['x'])), hostileValue), { maxLength: 4 })
    .map((ps) => `?${ps.map(([k, v]) => `${k}=${enc(v)}`).join('&')}`),
  fc.constantFrom('?%', '?a=%ZZ', '?limit=1&limit=2', '?return_to=//evil.example', '?&&&=', `?q=${'z'.repeat(9000)}`),
)).map(([p, q]) => `${p}${q}`));

const request = (ep: FuzzEndpoint) => fc.record({
  method: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ep.methods) }, { weight: 1, arbitrary: fc.constantFrom(...ALL_METHODS) }),
  url: path(ep),
  authorization: credential(ep),
  contentType: contentType(ep),
  body: body(ep),
  headers: fc.dictionary(headerSafe.filter((s) => /^[a-z][a-z0-9-]{0,20}$/.test(s)).map((s) => `x-fz-${s}`), headerSafe, { maxKeys: 3 }),
  extra: fc.record({
    cookie: fc.option(headerSafe, { nil: undefined }),
    accept: fc.option(fc.constantFrom('application/json', 'text/html', '*/*', 'image/png', '', 'application/token-introspection+jwt',
      'application/token-introspection+jwt;q=x, ;;,*/*;q=', `application/token-introspection+jwt${';q=1'.repeat(500)}`), { nil: undefined }),
    'x-request-id': fc.option(headerSafe, { nil: undefined }),
    'x-forwarded-for': fc.option(headerSafe, { nil: undefined }),
  }, { requiredKeys: [] }),
});

type FuzzRequest = ReturnType<typeof request> extends fc.Arbitrary<infer R> ? R : never;

function toInject(ep: FuzzEndpoint, r: FuzzRequest): InjectOptions {
  const headers: Record<string, string> = { ...r.headers };
  for (const [k, v] of Object.entries(r.extra)) if (v !== undefined) headers[k] = v;
  let payload = r.body;
  if (r.authorization === 'valid' && ep.csrf) {
    headers.cookie = `latchkey_csrf=${CSRF}`;
    payload = `${payload ?? ''}&csrf=${CSRF}`;
  } else if (r.authorization !== undefined) {
    headers.authorization = r.authorization === 'valid' ? ep.validCredential!() : r.authorization;
  }
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  return { method: r.method as InjectOptions['method'], url: r.url, headers, ...(payload !== undefined ? { payload } : {}) };
}

/** Rejects after `ms`: a request that never answers fails the property instead of the whole run. */
async function withinTime<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

function expectWellFormed(ep: FuzzEndpoint, method: string, res: InjectResponse): void {
  const status = res.statusCode;
  expect(status, res.body.slice(0, 300)).toBeLessThan(500);
  expect(res.body).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
  if (status < 400) {
    // The endpoints a browser app calls answer OPTIONS (CORS preflights, src/server/http/cors.ts).
    if (method === 'OPTIONS' && status === 204) return;
    expect(ep.success, `${method} → ${status}`).toContain(status);
    return;
  }
  if (method === 'HEAD') return; // no body to check
  const type = String(res.headers['content-type'] ?? '');
  if (ep.errors === 'page' && type.startsWith('text/html')) return;
  expect(type, `${method} → ${status}: ${res.body.slice(0, 200)}`).toBe('application/json; charset=utf-8');
  const json = res.json() as Record<string, unknown>;
  expect(Object.keys(json).sort()).toEqual(['error', 'error_description']);
  expect(json.error).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/); // RFC 6749 §5.2 error charset
  expect(typeof json.error_description).toBe('string');
}

/** Rows per table, except the audit trail, the login throttle's counters and passkey challenges (side effects the spec allows). */
async function tableCounts(app: TestApp): Promise<Record<string, number>> {
  const db = app.context.store.db;
  const tables = await sql<{ table_name: string }>`select table_name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(db);
  const counts: Record<string, number> = {};
  for (const { table_name: name } of tables.rows) {
    // A passkey options request stores its challenge (single-use, expiring): a side effect like a throttle counter.
    if (name === 'audit_events' || name === 'login_throttle' || name === 'webauthn_challenges') continue;
    const r = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(name)}`.execute(db);
    counts[name] = Number(r.rows[0]!.n);
  }
  return counts;
}

describe('hostile requests at every public endpoint (fast-check)', () => {
  let app: TestApp;
  let before: Record<string, number>;
  beforeAll(async () => {
    app = await createTestApp({
      ADMIN_TOKENS: ADMIN, INITIAL_ACCESS_TOKEN: IAT, ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1',
      // Limits out of reach, so the handlers behind them are what gets fuzzed (429s are tested elsewhere).
      TOKEN_RATE_LIMIT_PER_IP: '10000000', TOKEN_RATE_LIMIT_PER_CLIENT: '10000000', INTROSPECTION_RATE_LIMIT_PER_IP: '10000000',
      INTROSPECTION_RATE_LIMIT_PER_CLIENT: '10000000', REVOCATION_RATE_LIMIT_PER_IP: '10000000', REVOCATION_RATE_LIMIT_PER_CLIENT: '10000000',
      REGISTRATION_RATE_LIMIT_PER_IP: '10000000', REGISTRATION_RATE_LIMIT_PER_CLIENT: '10000000', LOGIN_RATE_LIMIT_PER_IP: '10000000',
      LOGIN_RATE_LIMIT_PER_LOGIN: '10000000', CLIENT_AUTH_FAILURE_LIMIT: '10000000',
    });
    clientSecret = (await createClient(app.context, { grant_types: ['client_credentials'], scope: 'api:read api:write' }, CLIENT_ID)).clientSecret!;
    const hasher = await createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1, minLength: 12 });
    await new UserRepository(app.context.store.db).create({ username: 'fuzz-user', password_hash: await hasher.hash(PASSWORD) }, app.context.clock.now());
    before = await tableCounts(app);
  });
  afterAll(async () => { await app.close(); });

  for (const ep of ENDPOINTS) {
    it(`${ep.path}: never a 5xx, a hang or a malformed error`, async () => {
      await fc.assert(fc.asyncProperty(request(ep), async (r) => {
        const res = await withinTime(app.server.inject(toInject(ep, r)));
        expectWellFormed(ep, r.method, res);
      }), { numRuns: RUNS });
    });
  }

  for (const ep of ENDPOINTS.filter((e) => e.singleValued)) {
    it(`${ep.path}: a repeated parameter is invalid_request (RFC 6749 §3.1)`, async () => {
      await fc.assert(fc.asyncProperty(
        fc.constantFrom(...ep.singleValued!),
        fc.array(fc.string({ maxLength: 20 }), { minLength: 2, maxLength: 3 }),
        async (name, values) => {
          const params: Record<string, string | string[]> = ep.path === '/token' ? { grant_type: 'client_credentials' } : { token: 'x' };
          params[name] = values.map((v, i) => `${v}${i}`); // never empty: an empty value counts as omitted (§3.1)
          const res = await withinTime(app.server.inject({
            method: 'POST', url: ep.path, headers: { ...FORM_HEADERS, authorization: ep.validCredential!() }, payload: form(params),
          }));
          expect(res.statusCode).toBe(400);
          expect(res.json().error).toBe('invalid_request');
        },
      ), { numRuns: 15 });
    });
  }

  it('changed nothing in the database, and still serves good requests', async () => {
    expect(await tableCounts(app)).toEqual(before);
    // Every audit event the fuzzing raised could be stored (none poisons the batch).
    await app.context.audit.flush();
    expect(app.logs.text()).not.toContain('audit events could not be written');
    expect(app.logs.text()).not.toContain('"msg":"request failed"');
    // The fuzzing got past the CSRF check to real sign-in attempts.
    expect((await app.context.metrics.registry.getSingleMetricAsString('latchkey_logins_total'))).toMatch(/outcome="(failure|throttled)"\} [1-9]/);
    const token = await app.server.inject({
      method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: clientAuth() }, payload: form({ grant_type: 'client_credentials' }),
    });
    expect(token.statusCode).toBe(200);
    const accessToken = token.json().access_token as string;
    const introspection = await app.server.inject({
      method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: clientAuth() }, payload: form({ token: accessToken }),
    });
    expect(introspection.json()).toMatchObject({ active: true, client_id: CLIENT_ID });
    expect((await app.server.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await app.server.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: adminAuth() } })).statusCode).toBe(200);
  });
});

describe('regressions found by the fuzz test', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ADMIN_TOKENS: ADMIN, ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' }); });
  afterAll(async () => { await app.close(); });

  it('treats a client_id no client can have (a NUL byte) as an unknown client (401), or a form parameter with a NUL as invalid_request (400) — never a database error', async () => {
    for (const authorization of [basic('a\u0000b', 'x'), `Basic ${Buffer.from('a%00b:x').toString('base64')}`]) {
      const res = await app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization }, payload: form({ grant_type: 'client_credentials' }) });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_client');
    }
    for (const path of ['/introspect', '/revoke']) {
      const res = await app.server.inject({ method: 'POST', url: path, headers: FORM_HEADERS, payload: 'client_id=%00&token=x' });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'the client_id parameter must not contain a NUL character' });
    }
  });

  it('stores the audit event of such a failure (NUL as U+FFFD) instead of failing the batch for good', async () => {
    await app.server.inject({ method: 'POST', url: '/token', headers: { ...FORM_HEADERS, authorization: basic('nul\u0000id', 'x') }, payload: form({ grant_type: 'client_credentials' }) });
    app.context.audit.record('server.started', { marker: 'after-the-nul' });
    await app.context.audit.flush();
    const rows = await new AuditEventRepository(app.context.store.db).query({ event: 'client.auth_failed', clientId: 'nul\uFFFDid' });
    expect(rows).toHaveLength(1);
    expect((await new AuditEventRepository(app.context.store.db).query({ event: 'server.started' })).map((r) => r.details.marker)).toContain('after-the-nul');
  });

  it('refuses a NUL byte in an audit query with 400 invalid_request', async () => {
    for (const name of ['client_id', 'sub', 'event', 'jti', 'cursor']) {
      const res = await app.server.inject({ method: 'GET', url: `/admin/audit?${name}=a%00b`, headers: { authorization: adminAuth() } });
      expect(res.statusCode, name).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
  });

  it('answers a sign-in with a NUL byte in the login name as a failed sign-in (401 page)', async () => {
    const res = await app.server.inject({
      method: 'POST', url: '/login', headers: { ...FORM_HEADERS, cookie: `latchkey_csrf=${CSRF}` }, payload: `login=a%00b&password=x&csrf=${CSRF}`,
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('answers a path with broken percent-encoding with the JSON invalid_request, not Fastify\'s own error shape', async () => {
    for (const url of ['/admin/clients/fz-%E0%A4%A', '/register/%', '/admin/clients/%ZZ/disable']) {
      const res = await app.server.inject({ method: 'GET', url, headers: { authorization: adminAuth() } });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.json()).toEqual({ error: 'invalid_request', error_description: 'malformed request' });
    }
  });
});

describe('NUL bytes and unpaired surrogates in client metadata (admin API)', () => {
  let app: TestApp;
  beforeAll(async () => { app = await createTestApp({ ADMIN_TOKENS: ADMIN }); });
  afterAll(async () => { await app.close(); });

  it('refuses client metadata with a NUL byte or an unpaired surrogate with 400, creating nothing', async () => {
    const count = async () => (await app.context.store.db.selectFrom('clients').select('client_id').execute()).length;
    const before = await count();
    for (const metadata of [
      { client_name: 'a\u0000b' }, { scope: 'a\u0000b' }, { redirect_uris: ['https://a.example/\u0000'] }, { client_id: 'a\u0000b' },
      { client_name: 'a\uD800b' }, { logo_uri: 'https://a.example/\uDC00' }, { redirect_uris: ['https://a.example/\uD800'] }, { contacts: ['\uDBFF@a.example'] },
    ]) {
      const res = await app.server.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: adminAuth(), 'content-type': 'application/json' }, payload: JSON.stringify({ grant_types: ['client_credentials'], ...metadata }) });
      expect(res.statusCode, JSON.stringify(metadata)).toBe(400);
    }
    expect(await count()).toBe(before);
  });
});

/**
 * The endpoints that create or change clients, fuzzed with valid credentials on an app of
 * their own (state may change here): random metadata must be refused with a well-formed 4xx or
 * accepted, never a 5xx — and what is accepted reads back.
 */
describe('hostile client metadata with valid credentials (admin API, registration)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ ADMIN_TOKENS: ADMIN, INITIAL_ACCESS_TOKEN: IAT, REGISTRATION_RATE_LIMIT_PER_IP: '10000000', REGISTRATION_RATE_LIMIT_PER_CLIENT: '10000000' });
    await createClient(app.context, { grant_types: ['client_credentials'] }, 'fz-target');
  });
  afterAll(async () => { await app.close(); });

  const MEMBERS = ['client_id', 'redirect_uris', 'grant_types', 'response_types', 'scope', 'default_scope', 'resources', 'token_endpoint_auth_method',
    'token_endpoint_auth_signing_alg', 'jwks', 'jwks_uri', 'client_name', 'client_uri', 'logo_uri', 'contacts', 'access_token_ttl', 'skip_consent',
    'require_pushed_authorization_requests', 'post_logout_redirect_uris', 'software_id', 'software_version', 'tos_uri', 'policy_uri',
    'backchannel_logout_uri', 'backchannel_logout_session_required'];
  const memberValue = fc.oneof(
    hostileValue, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(hostileValue, { maxLength: 3 }), hostileUri,
    fc.constantFrom(['client_credentials'], ['authorization_code'], ['code'], ['https://app.example/cb'], ['http://127.0.0.1:9/cb'], ['com.example.app:/cb'],
      'client_secret_basic', 'none', 'private_key_jwt', { keys: [] }, { keys: [{ kty: 'EC' }] }, { keys: 'x' }, 'api:read', ['https://api.example'], 0, -1, 1e308),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const metadata = fc.dictionary(fc.oneof(fc.constantFrom(...MEMBERS), fc.string({ maxLength: 10 })), memberValue, { maxKeys: 6 });

  const cases: Array<[string, string, string, number[]]> = [
    ['POST', '/admin/clients', `Bearer ${ADMIN}`, [201]],
    ['PUT', '/admin/clients/fz-target', `Bearer ${ADMIN}`, [200]],
    ['PATCH', '/admin/clients/fz-target', `Bearer ${ADMIN}`, [200]],
    ['POST', '/register', `Bearer ${IAT}`, [201]],
  ];
  for (const [method, url, authorization, success] of cases) {
    it(`${method} ${url}: never a 5xx`, async () => {
      await fc.assert(fc.asyncProperty(metadata, async (body) => {
        const res = await withinTime(app.server.inject({ method: method as InjectOptions['method'], url, headers: { authorization, 'content-type': 'application/json' }, payload: JSON.stringify(body) }));
        expectWellFormed({ path: url, methods: [method], params: [], success, errors: 'oauth' }, method, res);
        if (res.statusCode < 300 && method === 'POST') {
          const id = (res.json() as { client_id: string }).client_id;
          const read = await app.server.inject({ method: 'GET', url: `/admin/clients/${encodeURIComponent(id)}`, headers: { authorization: `Bearer ${ADMIN}` } });
          expect(read.statusCode).toBe(200);
        }
      }), { numRuns: Math.ceil(RUNS / 2) });
    });
  }

  /**
   * Issue #20 (1): the members the server sends requests to, given URIs of every shape — every
   * scheme, credentials, every notation of internal and public IP literals, loopback names,
   * ports, paths, fragments — on top of otherwise valid metadata. Each is refused with
   * invalid_client_metadata naming the member, or accepted only if the outbound fetcher may
   * reach it: https to a host that is no internal IP literal and no loopback name.
   */
  for (const member of ['jwks_uri', 'backchannel_logout_uri'] as const) {
    for (const [url, authorization] of [['/register', `Bearer ${IAT}`], ['/admin/clients', `Bearer ${ADMIN}`]] as const) {
      it(`POST ${url} with a hostile ${member}: refused naming it, or a target the fetcher may reach`, async () => {
        const base = member === 'jwks_uri'
          ? { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }
          : { redirect_uris: ['https://app.example/cb'] };
        await fc.assert(fc.asyncProperty(hostileUri, async (uri) => {
          const res = await withinTime(app.server.inject({ method: 'POST', url, headers: { authorization, 'content-type': 'application/json' }, payload: JSON.stringify({ ...base, [member]: uri }) }));
          expectWellFormed({ path: url, methods: ['POST'], params: [], success: [201], errors: 'oauth' }, 'POST', res);
          if (res.statusCode === 201) {
            expect(res.json()[member]).toBe(uri);
            expect(reachableProblem(uri), uri).toBeUndefined();
          } else if (res.json().error === 'invalid_request') {
            // The body itself refused (too large, a lone surrogate) before any member is read.
            expect(res.json().error_description).toMatch(/too large|not well-formed Unicode/);
          } else {
            expect(res.json().error, uri).toBe('invalid_client_metadata');
            expect(res.json().error_description, uri).toMatch(new RegExp(`^${member}: `));
          }
        }), { numRuns: RUNS });
      });
    }
  }

  it('left no audit event unwritable and no request failed', async () => {
    await app.context.audit.flush();
    expect(app.logs.text()).not.toContain('audit events could not be written');
    expect(app.logs.text()).not.toContain('"msg":"request failed"');
  });
});
