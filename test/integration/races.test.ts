import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { Browser } from '../support/browser.js';
import { basic, createClient, form, FORM_HEADERS } from '../support/clients.js';
import { createUser, FAST_ARGON2 } from '../support/oidc.js';
import { authorizationCode, codeFlow, redeemCode, refresh, REDIRECT, type TestClient, type TokenBody } from '../support/refresh.js';
import { onPostgres } from '../support/store.js';

/**
 * Single-use artefacts presented N times at once, on the embedded store and (DATABASE_URL) on
 * PostgreSQL, where the requests really run side by side on a pool of connections: the outcome
 * must not depend on which statement of which request ran first (DESIGN: state changes are
 * atomic in SQL). Device codes and other single-use artefacts belong here as they are added.
 */

const N = 40;
const ROUNDS = 5;
const SCOPE = 'openid offline_access';

type Response = Awaited<ReturnType<typeof refresh>>;

/** Each response as "200" or its OAuth error, counted. */
function outcomes(responses: Response[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const res of responses) {
    const key = res.statusCode === 200 ? '200' : `${res.statusCode} ${(res.json() as { error?: string }).error}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const gid = (accessToken: string) => decodeJwt(accessToken).gid as string;

async function setup(env: Record<string, string> = {}) {
  const app = await createTestApp({ ...FAST_ARGON2, ...env });
  const c = await createClient(app.context, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
  const web: TestClient = { id: c.client.clientId, secret: c.clientSecret! };
  await createUser(app.context, 'alice');
  // One browser: signed in and consent given once, then every code comes straight back.
  const browser = new Browser(app);
  const introspect = async (token: string) => (await app.server.inject({
    method: 'POST', url: '/introspect', headers: { ...FORM_HEADERS, authorization: basic(web.id, web.secret!) }, payload: form({ token }),
  })).json() as { active: boolean };
  const family = (id: string) => app.context.store.db.selectFrom('refresh_families').select(['revoked_at', 'revoked_reason']).where('id', '=', id).executeTakeFirstOrThrow();
  const tokenStates = async (id: string) => (await app.context.store.db.selectFrom('refresh_tokens').select('state').where('family_id', '=', id).orderBy('generation').execute()).map((t) => t.state);
  /** Audit log lines of `event` about this grant. */
  const audited = async (event: string, grantId: string) => {
    await app.context.audit.flush();
    return app.logs.lines.filter((l) => l.event === event && l.grant_id === grantId);
  };
  return { app, web, browser, introspect, family, tokenStates, audited };
}

describe('parallel redemption of one code and one refresh token (exact outcome counts)', () => {
  describe(`parallel redemption of one authorization code (${N} at once, ${ROUNDS} rounds, ${onPostgres ? 'PostgreSQL' : 'embedded'})`, () => {
    let s: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => { s = await setup(); });
    afterAll(async () => { await s.app.close(); });

    it('exactly one 200 and N-1 invalid_grant every round; the winner\'s tokens dead afterwards; each outcome audited once', async () => {
      const rounds: Array<Record<string, number>> = [];
      for (let round = 0; round < ROUNDS; round++) {
        const { code, verifier } = await authorizationCode(s.app, s.web, SCOPE, 'alice', s.browser);
        const responses = await Promise.all(Array.from({ length: N }, () => redeemCode(s.app, s.web, code, verifier)));
        rounds.push(outcomes(responses));
        const won = responses.filter((r) => r.statusCode === 200).map((r) => r.json() as TokenBody);
        if (won.length !== 1) continue;
        const [winner] = won as [TokenBody];
        const grantId = gid(winner.access_token);
        // RFC 6749 §4.1.2: the code was used more than once, so what it issued is revoked — the winner's too.
        expect(await s.introspect(winner.access_token)).toEqual({ active: false });
        expect(await s.family(grantId)).toMatchObject({ revoked_reason: 'authorization_code_replayed', revoked_at: expect.any(Date) });
        expect(await s.tokenStates(grantId)).toEqual(['revoked']);
        expect(outcomes([await refresh(s.app, s.web, winner.refresh_token!)])).toEqual({ '400 invalid_grant': 1 });
        // One line per outcome: each replay, the grant's revocation, the family's — whichever request revoked it.
        expect(await s.audited('authorization_code.replayed', grantId)).toHaveLength(N - 1);
        expect((await s.audited('authorization_code.replayed', grantId))[0]).toMatchObject({ client_id: s.web.id, sub: expect.any(String) });
        expect(await s.audited('grant.revoked', grantId)).toHaveLength(1);
        expect(await s.audited('family.revoked', grantId)).toEqual([
          expect.objectContaining({ reason: 'authorization_code_replayed', revoked_by: 'code_replay_detection', client_id: s.web.id }),
        ]);
        expect(s.app.logs.text()).not.toContain(code);
      }
      expect(rounds).toEqual(Array.from({ length: ROUNDS }, () => ({ '200': 1, '400 invalid_grant': N - 1 })));
    });

    it('a token request naming a resource outside the grant is invalid_target and leaves the code for the corrected request (RFC 8707 §2.2)', async () => {
      const { code, verifier } = await authorizationCode(s.app, s.web, SCOPE, 'alice', s.browser);
      const wrong = await redeemCode(s.app, s.web, code, verifier, { resource: 'https://elsewhere.example.com' });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json()).toMatchObject({ error: 'invalid_target' });
      const right = await redeemCode(s.app, s.web, code, verifier);
      expect(right.statusCode, right.body).toBe(200);
      expect(await s.introspect((right.json() as TokenBody).access_token)).toMatchObject({ active: true });
    });
  });

  describe(`parallel use of one refresh token (${N} at once, ${ROUNDS} rounds, ${onPostgres ? 'PostgreSQL' : 'embedded'})`, () => {
    describe('with the grace window (REFRESH_TOKEN_GRACE_PERIOD 30 s)', () => {
      let s: Awaited<ReturnType<typeof setup>>;
      beforeAll(async () => { s = await setup(); });
      afterAll(async () => { await s.app.close(); });

      it('all N get 200 with one and the same successor; the family lives on, one generation further', async () => {
        const rounds: Array<Record<string, number>> = [];
        for (let round = 0; round < ROUNDS; round++) {
          const first = await codeFlow(s.app, s.web, SCOPE, 'alice', s.browser);
          const grantId = gid(first.access_token);
          const responses = await Promise.all(Array.from({ length: N }, () => refresh(s.app, s.web, first.refresh_token!)));
          rounds.push(outcomes(responses));
          const ok = responses.filter((r) => r.statusCode === 200).map((r) => r.json() as TokenBody);
          expect(new Set(ok.map((b) => b.refresh_token)).size).toBe(1);
          expect(await s.tokenStates(grantId)).toEqual(['rotated', 'active']);
          expect(await s.family(grantId)).toMatchObject({ revoked_at: null });
          expect(await s.introspect(ok[0]!.access_token)).toMatchObject({ active: true });
          expect((await s.audited('refresh.rotated', grantId)).map((e) => e.grace).sort()).toEqual([false, ...Array.from({ length: N - 1 }, () => true)]);
          expect(await s.audited('refresh.reuse_detected', grantId)).toEqual([]);
          // The successor rotates as any token does.
          expect(outcomes([await refresh(s.app, s.web, ok[0]!.refresh_token!)])).toEqual({ '200': 1 });
        }
        expect(rounds).toEqual(Array.from({ length: ROUNDS }, () => ({ '200': N })));
      });
    });

    describe('with the grace window off (REFRESH_TOKEN_GRACE_PERIOD=0): a concurrent second use is reuse', () => {
      let s: Awaited<ReturnType<typeof setup>>;
      beforeAll(async () => { s = await setup({ REFRESH_TOKEN_GRACE_PERIOD: '0' }); });
      afterAll(async () => { await s.app.close(); });

      it('exactly one 200 and N-1 invalid_grant; the family revoked for reuse, the winner\'s tokens dead; one rotation, one revocation audited', async () => {
        const rounds: Array<Record<string, number>> = [];
        for (let round = 0; round < ROUNDS; round++) {
          const first = await codeFlow(s.app, s.web, SCOPE, 'alice', s.browser);
          const grantId = gid(first.access_token);
          const responses = await Promise.all(Array.from({ length: N }, () => refresh(s.app, s.web, first.refresh_token!)));
          rounds.push(outcomes(responses));
          const won = responses.filter((r) => r.statusCode === 200).map((r) => r.json() as TokenBody);
          if (won.length !== 1) continue;
          const [winner] = won as [TokenBody];
          expect(await s.family(grantId)).toMatchObject({ revoked_reason: 'refresh_token_reused' });
          expect(await s.tokenStates(grantId)).toEqual(['revoked', 'revoked']);
          expect(await s.introspect(winner.access_token)).toEqual({ active: false });
          expect(outcomes([await refresh(s.app, s.web, winner.refresh_token!)])).toEqual({ '400 invalid_grant': 1 });
          expect(await s.audited('refresh.rotated', grantId)).toHaveLength(1);
          expect(await s.audited('grant.revoked', grantId)).toHaveLength(1);
          expect(await s.audited('family.revoked', grantId)).toEqual([expect.objectContaining({ reason: 'refresh_token_reused', revoked_by: 'reuse_detection' })]);
          // Every loser that saw the token rotated is a reuse detection; one that came after the
          // family was revoked finds a revoked token. At least one detection, whatever the timing.
          expect((await s.audited('refresh.reuse_detected', grantId)).length).toBeGreaterThanOrEqual(1);
        }
        expect(rounds).toEqual(Array.from({ length: ROUNDS }, () => ({ '200': 1, '400 invalid_grant': N - 1 })));
      });
    });
  });
});
