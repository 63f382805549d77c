import { describe, expect, it } from 'vitest';
import { encodeAuditCursor, parseAuditQuery } from '../../src/platform/observability/audit-query.js';

describe('parseAuditQuery (the admin API and `latchkey audit`)', () => {
  it('reads filters, RFC 3339 times, the limit (default 100) and a cursor', () => {
    const cursor = encodeAuditCursor({ at: new Date('2026-03-01T10:00:00Z'), id: '42' });
    expect(parseAuditQuery({ client_id: 'billing', since: '2026-03-01T11:00:00+01:00', until: undefined, cursor })).toEqual({
      ok: true,
      query: {
        clientId: 'billing', sub: undefined, event: undefined, jti: undefined,
        since: new Date('2026-03-01T10:00:00Z'), until: undefined, limit: 100, after: { at: new Date('2026-03-01T10:00:00Z'), id: '42' },
      },
    });
    expect(parseAuditQuery({ limit: '1000' })).toMatchObject({ ok: true, query: { limit: 1000 } });
  });

  it('names the parameter of the first problem', () => {
    expect(parseAuditQuery({ since: '2026-03-01' })).toEqual({ ok: false, problem: 'since: must be an RFC 3339 date-time with an offset, e.g. 2026-11-23T10:00:00Z' });
    expect(parseAuditQuery({ limit: '99999' })).toEqual({ ok: false, problem: 'limit: must be an integer from 1 to 1000' });
    expect(parseAuditQuery({ cursor: encodeAuditCursor({ at: new Date(0), id: '1' }).slice(0, -3) })).toEqual({ ok: false, problem: 'cursor: not a cursor this server issued' });
  });
});
