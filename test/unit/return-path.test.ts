import { describe, expect, it } from 'vitest';
import { safeReturnPath } from '../../src/capabilities/login/routes.js';

describe('return path after sign-in', () => {
  it('keeps a path on this server, query included', () => {
    expect(safeReturnPath('/authorize?client_id=a&state=b')).toBe('/authorize?client_id=a&state=b');
  });
  it('refuses anything that could leave the server', () => {
    for (const bad of ['https://evil.example', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', 'relative', '/a\nb', '', 42, undefined]) {
      expect(safeReturnPath(bad)).toBe('/');
    }
  });
});
