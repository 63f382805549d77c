import { describe, expect, it } from 'vitest';
import { safeReturnPath } from '../../src/server/http/return-path.js';

describe('return path after sign-in', () => {
  it('keeps a path on this server, query included', () => {
    expect(safeReturnPath('/authorize?client_id=a&state=b')).toBe('/authorize?client_id=a&state=b');
  });
  it('refuses anything that could leave the server', () => {
    for (const bad of ['https://evil.example', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', 'relative', '/a\nb', '', 42, undefined]) {
      expect(safeReturnPath(bad)).toBe('/');
    }
  });
  it('percent-encodes what a Location header cannot carry, keeping existing escapes (RFC 3986 §2.1)', () => {
    expect(safeReturnPath('/café?q=ü ✓&x=%20')).toBe('/caf%C3%A9?q=%C3%BC%20%E2%9C%93&x=%20');
    expect(safeReturnPath('/\u{1F600}')).toBe('/%F0%9F%98%80');
  });
  it('refuses a lone surrogate, which has no UTF-8 form', () => {
    expect(safeReturnPath('/a\ud800b')).toBe('/');
  });
});
