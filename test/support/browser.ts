import type { FastifyInstance } from 'fastify';

/** A browser's cookie jar over `server.inject()`: just enough for the sign-in and consent pages. */
export class Browser {
  cookies = new Map<string, string>();
  /** `remoteAddress`: the address the browser connects from (default: inject's 127.0.0.1). */
  constructor(private readonly app: { server: FastifyInstance }, readonly remoteAddress?: string) {}

  header(): string { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }

  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>) {
    const res = await this.app.server.inject({
      method, url, ...(this.remoteAddress ? { remoteAddress: this.remoteAddress } : {}),
      headers: { cookie: this.header(), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(form ? { payload: new URLSearchParams(form).toString() } : {}),
    });
    for (const c of res.cookies as Array<{ name: string; value: string; maxAge?: number }>) {
      if (c.value === '' || c.maxAge === 0) this.cookies.delete(c.name); else this.cookies.set(c.name, c.value);
    }
    return res;
  }

  /** A JSON POST as the passkey script sends it (same cookies); the parsed answer. */
  async json(url: string, body: Record<string, unknown>) {
    const res = await this.app.server.inject({
      method: 'POST', url, ...(this.remoteAddress ? { remoteAddress: this.remoteAddress } : {}),
      headers: { cookie: this.header(), 'content-type': 'application/json' }, payload: JSON.stringify(body),
    });
    for (const c of res.cookies as Array<{ name: string; value: string; maxAge?: number }>) {
      if (c.value === '' || c.maxAge === 0) this.cookies.delete(c.name); else this.cookies.set(c.name, c.value);
    }
    return { statusCode: res.statusCode, body: res.json() as Record<string, any>, headers: res.headers };
  }

  async csrf(): Promise<string> {
    const page = await this.request('GET', '/login');
    return csrfOf(page.body);
  }

  async signIn(login: string, password: string, returnTo = '/') {
    return this.request('POST', '/login', { csrf: await this.csrf(), login, password, return_to: returnTo });
  }
}

/** The CSRF token of a rendered form. */
export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF field on the page');
  return m[1]!;
}

/** The fields a consent page's form posts: its CSRF token, the account it was shown to, and the decision. */
export function consentForm(html: string, decision: 'allow' | 'deny'): Record<string, string> {
  const shownTo = /name="shown_to" value="([^"]+)"/.exec(html);
  if (!shownTo) throw new Error('not a consent page');
  return { csrf: csrfOf(html), shown_to: shownTo[1]!, decision };
}
