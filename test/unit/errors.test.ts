import { describe, expect, it } from 'vitest';
import { toHttpError } from '../../src/server/http/errors.js';
import { InvalidGrant, OAuthError } from '../../src/oauth/errors.js';

describe('error mapping', () => {
  it('keeps a protocol error as it is, debug detail apart', () => {
    const err = new InvalidGrant('authorization code expired', 'code row 42 expired at …');
    expect(toHttpError(err)).toBe(err);
    expect(err.status).toBe(400);
    expect(err.toJSON()).toEqual({ error: 'invalid_grant', error_description: 'authorization code expired' });
  });

  it("maps Fastify's body-size and content-type errors to 413 and 415", () => {
    expect(toHttpError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).status).toBe(413);
    expect(toHttpError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 })).status).toBe(415);
  });

  it('hides anything unexpected behind server_error without its message', () => {
    const mapped = toHttpError(new Error('connection to 10.0.0.5 refused'));
    expect(mapped).toBeInstanceOf(OAuthError);
    expect(mapped.status).toBe(500);
    expect(mapped.toJSON()).toEqual({ error: 'server_error', error_description: 'the server could not handle the request' });
  });

  it('answers a database outage 503 temporarily_unavailable with Retry-After', () => {
    const mapped = toHttpError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));
    expect(mapped.status).toBe(503);
    expect(mapped.headers).toEqual({ 'retry-after': '2' });
    expect(mapped.toJSON()).toEqual({ error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; retry shortly' });
  });

  it("keeps Fastify's client errors client errors, even with a socket code: a body the client aborted is not a database outage", () => {
    // Fastify passes on the request stream's error ("aborted", ECONNRESET) with status 400.
    const mapped = toHttpError(Object.assign(new Error('aborted'), { code: 'ECONNRESET', statusCode: 400 }));
    expect(mapped.status).toBe(400);
    expect(mapped.error).toBe('invalid_request');
  });
});
