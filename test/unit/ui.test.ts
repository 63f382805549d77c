import { describe, expect, it } from 'vitest';
import { describeScopes } from '../../src/oauth/scope-descriptions.js';
import { html } from '../../src/platform/ui/html.js';
import { consentPage, loginPage } from '../../src/platform/ui/pages.js';

describe('server-rendered pages', () => {
  it('escapes interpolated values but not nested fragments', () => {
    expect(html`<p>${'<b>"x" & \'y\'</b>'}</p>`.value).toBe('<p>&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;</p>');
    expect(html`<p>${html`<b>${'<i>'}</b>`}</p>`.value).toBe('<p><b>&lt;i&gt;</b></p>');
  });

  it('describes scopes in plain language, configuration first, the scope name last', () => {
    expect(describeScopes(['openid', 'email', 'api:read', 'api:write'], { 'api:read': 'Read your invoices' })).toEqual([
      { scope: 'openid', description: 'Know who you are (your account identifier)' },
      { scope: 'email', description: 'See your email address' },
      { scope: 'api:read', description: 'Read your invoices' },
      { scope: 'api:write', description: 'api:write' },
    ]);
  });

  it('describes only scopes it was given a description for: nothing from the object prototype', () => {
    // scope=constructor once showed "function Object() { [native code] }" on the consent page.
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
    expect(describeScopes(names, {})).toEqual(names.map((scope) => ({ scope, description: scope })));
    // A configured description of such a name (JSON.parse makes "__proto__" an own member) is used.
    const custom = JSON.parse('{"__proto__":"Your prototype","constructor":"Build things"}') as Record<string, string>;
    expect(describeScopes(['__proto__', 'constructor', 'toString'], custom).map((d) => d.description)).toEqual(['Your prototype', 'Build things', 'toString']);
  });

  it('renders the consent page with each scope, allow and deny, and the carried fields escaped', () => {
    const body = consentPage({
      csrf: 'c'.repeat(43), clientName: 'Billing <App>', username: 'alice', action: '/authorize/consent',
      scopes: describeScopes(['openid', 'profile'], {}), hidden: { client_id: 'billing', state: '"><script>' },
      policyUri: 'https://billing.example.com/privacy', redirectUri: 'https://billing.example.com/cb?x=1',
    });
    expect(body).toContain('<h1>Allow Billing &lt;App&gt; to access your account?</h1>');
    expect(body).toContain('<li>See your name, username, picture and locale</li>');
    expect(body).toContain('<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;">');
    expect(body).toContain('<button type="submit" name="decision" value="allow">Allow</button>');
    expect(body).toContain('<button type="submit" name="decision" value="deny" class="secondary">Deny</button>');
    expect(body).toContain('<a href="https://billing.example.com/privacy" rel="noopener noreferrer">privacy policy</a>');
    expect(body).not.toContain('<script>');
    expect(body).toContain('<p>Allowing sends you on to <strong>billing.example.com</strong>.</p>');
    expect(body).not.toContain('registered itself');
  });

  it('the consent page of a self-registered client says so, and shows where Allow leads', () => {
    const body = consentPage({
      csrf: 'c'.repeat(43), clientName: 'Your Bank', username: 'alice', action: '/interaction/x',
      scopes: [], hidden: {}, redirectUri: 'https://your-bank.example.net:8443/cb',
      selfRegistered: { clientName: 'Your Bank', issuerHost: 'id.example.com' },
    });
    expect(body).toContain('<p class="warning"><strong>Your Bank</strong> registered itself with id.example.com: its name and links are its own claims, not verified by id.example.com.</p>');
    expect(body).toContain('Allowing sends you on to <strong>your-bank.example.net:8443</strong>.');
    const native = consentPage({ csrf: 'c', clientName: 'App', username: 'a', action: '/i', scopes: [], hidden: {}, redirectUri: 'com.example.app:/cb' });
    expect(native).toContain('Allowing sends you on to <strong>the app com.example.app</strong>.');
  });

  it('renders the throttled login message with the wait', () => {
    expect(loginPage({ csrf: 'x', returnTo: '/', error: 'throttled', retryAfterSeconds: 8 })).toContain('Too many attempts. Try again in 8 seconds.');
  });
});
