import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { requestIdFor } from '../../src/server/http/request-id.js';

const req = (id?: string | string[]) => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as unknown as IncomingMessage;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('honours a sane incoming X-Request-Id', () => {
    expect(requestIdFor(req('abc-123_DEF.4'))).toBe('abc-123_DEF.4');
  });
  it('generates a UUID when none is sent', () => {
    expect(requestIdFor(req())).toMatch(UUID);
  });
  it('replaces an unsafe or oversized one', () => {
    expect(requestIdFor(req('a b'))).toMatch(UUID);
    expect(requestIdFor(req('x'.repeat(129)))).toMatch(UUID);
    expect(requestIdFor(req('line\nbreak'))).toMatch(UUID);
    expect(requestIdFor(req(['a', 'b']))).toMatch(UUID);
  });
});
