import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventRepository, type NewAuditEvent } from '../../src/platform/observability/audit-event-store.js';
import { createTestApp, type TestApp } from '../support/app.js';

const ADMIN = 'admin-credential-0123456789-abcdefghijklmnop';

const event = (at: string, name: string, fields: Partial<NewAuditEvent> = {}): NewAuditEvent => ({
  at: new Date(at), event: name, request_id: null, client_id: null, sub: null, ip: null, user_agent: null, jti: null, details: {}, ...fields,
});

interface AuditResponse {
  events: Array<{ id: string; at: string; event: string; client_id: string | null; sub: string | null; jti: string | null; details: Record<string, unknown> }>;
  next_cursor: string | null;
}

describe('GET /admin/audit', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ ADMIN_TOKENS: ADMIN });
    await app.context.audit.flush();
    await new AuditEventRepository(app.context.store.db).insertMany([
      event('2026-03-01T10:00:00Z', 'token.issued', { client_id: 'billing', sub: 'billing', jti: 'j1', details: { scope: 'api:read' } }),
      event('2026-03-01T10:05:00Z', 'login.succeeded', { sub: 'user-1', ip: '10.0.0.7' }),
      event('2026-03-01T10:10:00Z', 'token.issued', { client_id: 'billing', sub: 'billing', jti: 'j2' }),
      event('2026-03-01T10:10:00Z', 'token.revoked', { client_id: 'billing', jti: 'j1' }),
      event('2026-03-01T10:20:00Z', 'token.issued', { client_id: 'reports', sub: 'reports', jti: 'j3' }),
    ]);
  });
  afterAll(async () => { await app.close(); });

  const get = (query: string, token = ADMIN) => app.server.inject({ method: 'GET', url: `/admin/audit${query}`, headers: { authorization: `Bearer ${token}` } });
  const events = async (query: string) => {
    const res = await get(query);
    expect(res.statusCode).toBe(200);
    return res.json() as AuditResponse;
  };
  const trail = (r: AuditResponse) => r.events.filter((e) => e.at.startsWith('2026-03-01')).map((e) => `${e.event}:${e.jti ?? e.sub}`);

  it('needs the admin bearer credential', async () => {
    const res = await get('', 'wrong-credential-0123456789-abcdefghijklmnop');
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toBe('invalid_token');
  });

  it('answers a client\'s timeline oldest first, with identifiers and details, and no next page', async () => {
    const r = await events('?client_id=billing');
    expect(trail(r)).toEqual(['token.issued:j1', 'token.issued:j2', 'token.revoked:j1']);
    expect(r.events[0]).toMatchObject({ at: '2026-03-01T10:00:00.000Z', client_id: 'billing', sub: 'billing', details: { scope: 'api:read' } });
    expect(r.events[0]!.id).toMatch(/^\d+$/);
    expect(r.next_cursor).toBeNull();
  });

  it('filters by sub, event and a half-open time window [since, until)', async () => {
    expect(trail(await events('?sub=user-1'))).toEqual(['login.succeeded:user-1']);
    expect(trail(await events('?event=token.issued&since=2026-03-01T10:05:00Z&until=2026-03-01T10:20:00Z'))).toEqual(['token.issued:j2']);
    expect(trail(await events('?since=2026-03-01T11:00:00%2B01:00&until=2026-03-01T10:10:00Z'))).toEqual(['token.issued:j1', 'login.succeeded:user-1']);
  });

  it('pages with limit and next_cursor, without losing or repeating events that share a time', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: AuditResponse = await events(`?since=2026-03-01T00:00:00Z&until=2026-03-02T00:00:00Z&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.events.length).toBeLessThanOrEqual(2);
      seen.push(...trail(r));
      cursor = r.next_cursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(['token.issued:j1', 'login.succeeded:user-1', 'token.issued:j2', 'token.revoked:j1', 'token.issued:j3']);
  });

  it('defaults to 100 events and allows at most 1000', async () => {
    expect((await get('?limit=1000')).statusCode).toBe(200);
    expect((await get('?limit=1001')).json()).toEqual({ error: 'invalid_request', error_description: 'limit: must be an integer from 1 to 1000' });
  });

  it('refuses bad input with 400 invalid_request naming the parameter', async () => {
    const cases: Array<[string, string]> = [
      ['?since=yesterday', 'since: must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T10:00:00Z'],
      ['?until=2026-03-01T10:00:00', 'until: must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T10:00:00Z'],
      ['?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z', 'since: must be before until'],
      ['?limit=0', 'limit: must be an integer from 1 to 1000'],
      ['?limit=ten', 'limit: must be an integer from 1 to 1000'],
      ['?cursor=bm90IGEgY3Vyc29y', 'cursor: not a cursor this server issued'],
      ['?client_id=a&client_id=b', 'client_id: must be given once'],
      ['?client_id=', 'client_id: must not be empty'],
      ['?event=DROP%20TABLE', 'event: must be an event name such as token.issued'],
      ['?color=blue', 'unknown parameter(s): color'],
    ];
    for (const [query, description] of cases) {
      const res = await get(query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json(), query).toEqual({ error: 'invalid_request', error_description: description });
    }
  });
});
