import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/oauth/client.js';
import { ClientRepository } from '../../src/oauth/clients/store.js';
import { AuditEventRepository } from '../../src/platform/observability/audit-event-store.js';
import { OutboundPolicy } from '../../src/platform/outbound/policy.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';
import { Browser } from '../support/browser.js';
import { createClient, parseClientMetadata } from '../support/clients.js';
import { ManualClock } from '../support/clock.js';
import { createUser, FAST_ARGON2, PASSWORD } from '../support/oidc.js';
import { freePort } from '../support/process.js';
import { codeFlow, REDIRECT, type TestClient } from '../support/refresh.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A relying party's back-channel endpoint: records each POST and answers with the status set for its path. Listens on every address (127.0.0.1 and ::1). */
class Receiver {
  readonly posts: { path: string; contentType: string | undefined; body: URLSearchParams }[] = [];
  readonly status = new Map<string, number>();
  readonly hang = new Set<string>();
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; }).on('end', () => {
        const path = req.url ?? '';
        this.posts.push({ path, contentType: req.headers['content-type'], body: new URLSearchParams(body) });
        if (this.hang.has(path)) return; // never answers
        res.writeHead(this.status.get(path) ?? 200, { 'cache-control': 'no-store', location: `${this.base}/redirected/bc` }).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '::', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  to(path: string) { return this.posts.filter((p) => p.path === path); }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('OpenID Connect Back-Channel Logout 1.0', () => {
  let app: TestApp;
  const clock = new ManualClock();
  const rp = new Receiver();
  let web: TestClient;
  let other: TestClient;
  let silent: TestClient;
  let broken: TestClient;
  let unreachable: TestClient;

  const make = async (metadata: Record<string, unknown>): Promise<TestClient> => {
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid', skip_consent: true, ...metadata });
    return { id: c.client.clientId, secret: c.clientSecret! };
  };

  beforeAll(async () => {
    await rp.start();
    // The relying party is reached on 127.0.0.1, an address the outbound guard refuses unless allowed.
    app = await createTestApp({ ...FAST_ARGON2, BACKCHANNEL_LOGOUT_TIMEOUT: '1', OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' }, { clock });
    web = await make({ backchannel_logout_uri: `${rp.base}/web/bc?tenant=1`, backchannel_logout_session_required: true, id_token_signed_response_alg: 'ES256' });
    other = await make({ backchannel_logout_uri: `${rp.base}/other/bc` });
    silent = await make({});
    broken = await make({ backchannel_logout_uri: `${rp.base}/broken/bc` });
    unreachable = await make({ backchannel_logout_uri: `http://127.0.0.1:${await freePort()}/bc` }); // nothing listens there
    await createUser(app.context, 'alice');
  });
  afterAll(async () => {
    await app.close();
    await rp.stop();
  });

  const signOut = async (b: Browser) => {
    const page = await b.request('GET', '/logout');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const res = await b.request('POST', '/logout', { csrf, decision: 'sign_out' });
    expect(res.statusCode).toBe(200);
  };
  const sidOf = (idToken: string) => decodeJwt(idToken).sid as string;
  const metric = async (outcome: string) => {
    const values = (await app.context.metrics.registry.getSingleMetric('latchkey_backchannel_logouts_total')!.get()).values;
    return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  };

  it('posts a logout token to each client that took part in the session, and only to those', async () => {
    const b = new Browser(app);
    const first = await codeFlow(app, web, 'openid', 'alice', b);
    await codeFlow(app, silent, 'openid', 'alice', b);
    await codeFlow(app, web, 'openid', 'alice', b); // a second code in the same session: told once
    const sid = sidOf(first.id_token!);
    const before = { web: rp.to('/web/bc?tenant=1').length, other: rp.to('/other/bc').length, delivered: await metric('delivered') };

    await signOut(b);
    await app.services.sessionEnd.idle();
    expect(await metric('delivered')).toBe(before.delivered + 1);
    expect(rp.to('/web/bc?tenant=1').length).toBe(before.web + 1);
    expect(rp.to('/other/bc').length).toBe(before.other); // never in this session

    const post = rp.to('/web/bc?tenant=1').pop()!;
    expect(post.contentType).toBe('application/x-www-form-urlencoded');
    expect([...post.body.keys()]).toEqual(['logout_token']);
    const token = post.body.get('logout_token')!;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'logout+jwt' });
    const jwks = createLocalJWKSet((await app.server.inject({ method: 'GET', url: '/jwks' })).json());
    const { payload } = await jwtVerify(token, jwks, { issuer: 'http://localhost:8080', audience: web.id, currentDate: clock.now(), typ: 'logout+jwt' });
    expect(Object.keys(payload).sort()).toEqual(['aud', 'events', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub']);
    expect(payload).toMatchObject({ sub: decodeJwt(first.id_token!).sub, sid, events: { [EVENT]: {} } });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(payload.nonce).toBeUndefined();

    const audited = app.logs.lines.filter((l) => l.event === 'logout.backchannel').pop();
    expect(audited).toMatchObject({ client_id: web.id, sid, outcome: 'delivered', detail: 'HTTP 200' });
    expect(JSON.stringify(app.logs.lines)).not.toContain(token);

    // A new session nobody took part in: signing out of it tells nobody.
    const again = new Browser(app);
    expect((await again.signIn('alice', PASSWORD)).statusCode).toBe(303);
    await signOut(again);
    await app.services.sessionEnd.idle();
    expect(rp.to('/web/bc?tenant=1').length).toBe(before.web + 1);
    expect(await metric('delivered')).toBe(before.delivered + 1);
  });

  it('a failing or silent endpoint is counted and audited as failed, and the sign-out still completes', async () => {
    rp.status.set('/broken/bc', 500);
    rp.hang.add('/other/bc');
    const b = new Browser(app);
    const t = await codeFlow(app, broken, 'openid', 'alice', b);
    await codeFlow(app, other, 'openid', 'alice', b);
    await codeFlow(app, unreachable, 'openid', 'alice', b);
    const failed = await metric('failed');
    await signOut(b);
    expect((await b.request('GET', '/')).statusCode).toBe(303); // signed out at once, whatever the clients do
    await app.services.sessionEnd.idle();
    expect(await metric('failed')).toBe(failed + 3);
    const events = app.logs.lines.filter((l) => l.event === 'logout.backchannel' && l.sid === sidOf(t.id_token!));
    expect(events.map((e) => [e.client_id, e.outcome, e.detail]).sort()).toEqual([[broken.id, 'failed', 'HTTP 500'], [other.id, 'failed', 'timeout'], [unreachable.id, 'failed', 'ECONNREFUSED']].sort());
  });

  it('a new sign-in replacing the session tells its clients too', async () => {
    rp.status.delete('/broken/bc');
    const b = new Browser(app);
    const t = await codeFlow(app, broken, 'openid', 'alice', b);
    const before = rp.to('/broken/bc').length;
    expect((await b.signIn('alice', PASSWORD)).statusCode).toBe(303);
    await app.services.sessionEnd.idle();
    expect(rp.to('/broken/bc').length).toBe(before + 1);
    expect(decodeJwt(rp.to('/broken/bc').pop()!.body.get('logout_token')!).sid).toBe(sidOf(t.id_token!));
  });

  /** Issue #20 (1): the POST goes through the outbound fetcher — its address rule, no redirects. */
  it('never posts to an address the outbound guard refuses, whatever is stored, nor follows a redirect', async () => {
    const port = new URL(rp.base).port;
    // As registered before the check existed: the metadata straight into the store.
    const metadata = parseClientMetadata(
      { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid', skip_consent: true, backchannel_logout_uri: `http://[::1]:${port}/internal/bc` },
      { outbound: new OutboundPolicy({ issuer: 'http://localhost:8080', allowed: ['::1'] }) },
    );
    await new ClientRepository(app.context.store.db, app.context.store.notifier)
      .insert({ clientId: 'stored-internal', metadata, secretHash: hashSecret('stored-internal-secret'), registrationAccessTokenHash: null, source: 'cli' });
    const moving = await make({ backchannel_logout_uri: `${rp.base}/moved/bc` });
    rp.status.set('/moved/bc', 302);

    const b = new Browser(app);
    const t = await codeFlow(app, { id: 'stored-internal', secret: 'stored-internal-secret' }, 'openid', 'alice', b);
    await codeFlow(app, moving, 'openid', 'alice', b);
    await signOut(b);
    await app.services.sessionEnd.idle();
    const events = app.logs.lines.filter((l) => l.event === 'logout.backchannel' && l.sid === sidOf(t.id_token!));
    expect(events.map((e) => [e.client_id, e.outcome, e.detail]).sort()).toEqual([
      ['stored-internal', 'failed', 'refused: must not point at an internal address (::1 is loopback)'],
      [moving.id, 'failed', 'redirect not followed (HTTP 302)'],
    ].sort());
    expect(rp.to('/internal/bc')).toEqual([]);
    expect(rp.to('/redirected/bc')).toEqual([]);
    expect(await app.context.metrics.registry.getSingleMetricAsString('latchkey_outbound_requests_total')).toMatch(/purpose="backchannel_logout",outcome="refused"\} 1\n/);
  });

  it('is advertised in discovery, and the URI is validated like other client metadata', async () => {
    const metadata = (await app.server.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
    expect(metadata).toMatchObject({ backchannel_logout_supported: true, backchannel_logout_session_supported: true });
    for (const [uri, message] of [
      ['https://rp.example.com/bc#frag', 'backchannel_logout_uri: must not include a fragment (Back-Channel Logout §2.2)'],
      ['http://rp.example.com/bc', 'backchannel_logout_uri: must be an https URL (http only on loopback)'],
      ['not a url', 'backchannel_logout_uri: must be an https URL (http only on loopback)'],
    ]) {
      await expect(createClient(app.context, { redirect_uris: [REDIRECT], backchannel_logout_uri: uri })).rejects.toMatchObject({ error: 'invalid_client_metadata', description: message });
    }
  });
});

describe('latchkey users disable: the user\'s sessions end and their apps are told', () => {
  const rp = new Receiver();
  const { open, setUp, tearDown } = sharedStoreForCli('latchkey-disable-');
  beforeAll(async () => {
    await rp.start();
    setUp({ ISSUER: 'http://localhost:8080', OUTBOUND_ALLOWED_HOSTS: '127.0.0.1' });
  });
  afterAll(async () => {
    await rp.stop();
    await tearDown();
  });

  it('ends every live session of the user, posts a logout token for each, and audits who did it', async () => {
    let app = await open();
    const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid', skip_consent: true, backchannel_logout_uri: `${rp.base}/cli/bc` });
    const client = { id: c.client.clientId, secret: c.clientSecret! };
    const aliceId = (await createUser(app.context, 'alice')).id;
    const sids = [];
    for (let i = 0; i < 2; i++) sids.push(decodeJwt((await codeFlow(app as TestApp, client, 'openid', 'alice')).id_token!).sid as string);
    await app.close();

    const run = await runCliCaptured(['users', 'disable', 'alice']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('alice disabled\nsessions ended: 2\napps told by back-channel logout: 2 delivered, 0 failed\n');

    app = await open();
    try {
      const jwks = createLocalJWKSet((await app.server.inject({ method: 'GET', url: '/jwks' })).json());
      const told = await Promise.all(rp.to('/cli/bc').map((p) => jwtVerify(p.body.get('logout_token')!, jwks, { issuer: 'http://localhost:8080', audience: client.id, typ: 'logout+jwt' })));
      expect(told.map(({ payload }) => [payload.sub, payload.sid]).sort()).toEqual(sids.map((sid) => [aliceId, sid]).sort());
      const sessions = await app.context.store.db.selectFrom('sessions').select(['sid', 'ended_at']).where('user_id', '=', aliceId).execute();
      expect(sessions.map((s) => s.sid).sort()).toEqual([...sids].sort());
      expect(sessions.every((s) => s.ended_at !== null)).toBe(true);
      const events = await new AuditEventRepository(app.context.store.db).query({});
      const by = `cli:${userInfo().username}`;
      expect(events.filter((e) => e.event === 'user.disabled').map((e) => [e.sub, e.details])).toEqual([[aliceId, { sessions_ended: 2, by }]]);
      expect(events.filter((e) => e.event === 'logout.backchannel').map((e) => [e.client_id, e.details.outcome, e.details.by])).toEqual([[client.id, 'delivered', by], [client.id, 'delivered', by]]);
    } finally {
      await app.close();
    }

    // Disabled again: no live session is left, so nobody is told twice.
    const again = await runCliCaptured(['users', 'disable', 'alice']);
    expect(again.stdout).toBe('alice disabled\n');
    expect(rp.to('/cli/bc')).toHaveLength(2);
  });
});
