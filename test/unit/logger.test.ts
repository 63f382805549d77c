import { describe, expect, it } from 'vitest';
import { redactUrl, scrubSecrets } from '../../src/platform/observability/logger.js';
import { LogCapture } from '../support/app.js';

describe('log redaction', () => {
  it('replaces secret fields at the top level and one level down', () => {
    const logs = new LogCapture();
    logs.logger.info({ client_secret: 'S1', body: { password: 'P1', refresh_token: 'R1', scope: 'openid' }, code: 'C1' }, 'x');
    const text = logs.text();
    for (const secret of ['S1', 'P1', 'R1', 'C1']) expect(text).not.toContain(secret);
    expect(logs.lines[0]!.body).toEqual({ password: '[Redacted]', refresh_token: '[Redacted]', scope: 'openid' });
  });

  it('replaces Authorization and Cookie headers', () => {
    const logs = new LogCapture();
    logs.logger.info({ headers: { authorization: 'Basic c2VjcmV0', cookie: 'sid=abc', accept: '*/*' } }, 'x');
    expect(logs.lines[0]!.headers).toEqual({ authorization: '[Redacted]', cookie: '[Redacted]', accept: '*/*' });
  });

  it('replaces secrets three levels down and leaves an object without secrets as it is', () => {
    expect(scrubSecrets({ a: { b: { token: 't', keep: 1 } } })).toEqual({ a: { b: { token: '[Redacted]', keep: 1 } } });
    expect(scrubSecrets({ res: { headers: { 'set-cookie': 'sid=1' } } })).toEqual({ res: { headers: { 'set-cookie': '[Redacted]' } } });
    const clean = { client_id: 'billing', scope: 'api:read', nested: { jti: 'x' } };
    expect(scrubSecrets(clean)).toBe(clean);
  });

  it('replaces the values of secret query parameters in URLs', () => {
    expect(redactUrl('/cb?code=abc&state=xyz')).toBe('/cb?code=[Redacted]&state=xyz');
    expect(redactUrl('/introspect?token=t&token_type_hint=access_token')).toBe('/introspect?token=[Redacted]&token_type_hint=access_token');
    expect(redactUrl('/x?%63ode=abc')).toBe('/x?%63ode=[Redacted]');
    expect(redactUrl('/healthz')).toBe('/healthz');
    expect(redactUrl('/x?%zz=1')).toBe('/x?%zz=1');
  });

  it('redacts inside return_to too: the sign-in page coming back to /device carries the user code', () => {
    expect(redactUrl('/login?return_to=%2Fdevice%3Fuser_code%3DBCDF-GHJK')).toBe(`/login?return_to=${encodeURIComponent('/device?user_code=[Redacted]')}`);
    expect(redactUrl('/login/factor?return_to=%2Flogin%3Freturn_to%3D%252Fdevice%253Fuser_code%253DBCDF-GHJK&acr=x'))
      .toBe(`/login/factor?return_to=${encodeURIComponent(`/login?return_to=${encodeURIComponent('/device?user_code=[Redacted]')}`)}&acr=x`);
    expect(redactUrl('/login?return_to=%2Finteraction%2Fabc')).toBe('/login?return_to=%2Finteraction%2Fabc');
    expect(redactUrl('/login?return_to=%zz')).toBe('/login?return_to=[Redacted]');
  });

  it('replaces hints that carry an ID token or personal data (OpenID Connect Core §3.1.2.1, RP-Initiated Logout §2)', () => {
    expect(redactUrl('/authorize?client_id=a&login_hint=alice%40example.com&id_token_hint=eyJ.x.y'))
      .toBe('/authorize?client_id=a&login_hint=[Redacted]&id_token_hint=[Redacted]');
    expect(redactUrl('/logout?logout_hint=alice&state=s')).toBe('/logout?logout_hint=[Redacted]&state=s');
    expect(scrubSecrets({ login_hint: 'alice@example.com', client_id: 'a' })).toEqual({ login_hint: '[Redacted]', client_id: 'a' });
  });
});
