import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, consentForm, csrfOf } from '../support/browser.js';
import { createAlice, instanceEnv, overHttp, startInstance, type Instance } from '../support/fault.js';
import { PASSWORD } from '../support/oidc.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

/**
 * The compatibility suite's server: a real `latchkey start` process (its own data directory, or
 * its own schema on DATABASE_URL's PostgreSQL) with the clients a file declares, and alice.
 */
export interface CompatServer {
  instance: Instance; issuer: string; close(): Promise<void>;
  /** alice's `sub` (as `latchkey users create` printed it); none with `{ alice: false }`. */
  aliceSub?: string;
}

export const REDIRECT = 'https://app.example.com/callback';
export const SIGNED_OUT = 'https://app.example.com/signed-out';

/** A secret from the environment (the clients file names the variable). */
export function secretOf(name: string): string {
  return `${name}-secret-0123456789abcdef0123456789abcdef`;
}

export async function startCompatServer(clients: Array<Record<string, unknown>>, extra: Record<string, string> = {}, options: { alice?: boolean } = {}): Promise<CompatServer> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-compat-'));
  const clientsFile = join(dir, 'clients.json');
  const secrets: Record<string, string> = {};
  writeFileSync(clientsFile, JSON.stringify({
    clients: clients.map((c) => {
      const env = `COMPAT_SECRET_${String(c.client_id).replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
      secrets[env] = secretOf(String(c.client_id));
      // Only the secret methods (client_secret_basic, the default, and client_secret_post) hold one.
      return [undefined, 'client_secret_basic', 'client_secret_post'].includes(c.token_endpoint_auth_method as string | undefined) ? { ...c, client_secret_env: env } : c;
    }),
  }));
  const schema = onPostgres ? uniqueSchema() : undefined;
  const env = instanceEnv(onPostgres ? process.env.DATABASE_URL! : undefined, {
    ...(schema ? { DATABASE_SCHEMA: schema } : {}), CLIENTS_FILE: clientsFile, ...secrets, ...extra,
  });
  // The issuer is the instance's own address (startInstance's default), not the fleet name.
  delete env.ISSUER;
  // The embedded store is one process's: the user first, then the server.
  const aliceSub = options.alice === false ? undefined : await createAlice(env);
  const instance = await startInstance(env);
  return {
    instance,
    issuer: instance.base,
    ...(aliceSub ? { aliceSub } : {}),
    async close() {
      instance.proc.child.kill('SIGTERM');
      await instance.proc.exited;
      if (schema) await dropSchema(schema);
    },
  };
}

/**
 * What a browser does with an authorization URL a client library built: follows it, signs alice
 * in on the real sign-in page, allows on the consent page, and returns where the server sent it
 * back to (the redirect URI with the response). Over HTTP with the project's cookie-jar browser,
 * not a real browser.
 */
export async function signInAndConsent(issuer: string, authorizationUrl: URL, browser = new Browser(overHttp(issuer))): Promise<URL> {
  if (authorizationUrl.origin !== issuer) throw new Error(`authorization URL on another origin: ${authorizationUrl.href}`);
  let res = await browser.request('GET', authorizationUrl.pathname + authorizationUrl.search);
  if (res.statusCode === 303 && res.headers.location!.startsWith('/login?')) {
    const loginUrl = new URL(res.headers.location!, issuer);
    const page = await browser.request('GET', loginUrl.pathname + loginUrl.search);
    res = await browser.request('POST', '/login', { csrf: csrfOf(page.body), login: 'alice', password: PASSWORD, return_to: loginUrl.searchParams.get('return_to')! });
    res = await browser.request('GET', res.headers.location!);
  }
  if (res.statusCode === 200 && res.body.includes('Allow access?')) {
    const action = /action="(\/interaction\/[^"]+)"/.exec(res.body)![1]!;
    res = await browser.request('POST', action, consentForm(res.body, 'allow'));
  }
  if (res.statusCode !== 303 && res.statusCode !== 302) throw new Error(`no redirect back: ${res.statusCode} ${res.body.slice(0, 300)}`);
  return new URL(res.headers.location!, issuer);
}
