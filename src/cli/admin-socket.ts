import { existsSync } from 'node:fs';
import { request } from 'node:http';
import type { Config } from '../server/config.js';
import { dataDirOwner } from '../platform/db/data-dir.js';
import { adminSocketPath, socketAnswers } from '../server/http/admin-socket.js';
import { UsageError } from './command.js';

/**
 * The CLI beside a running embedded server: embedded PGlite is single-process, so a command that
 * would open the store while a server owns DATA_DIR asks that server instead, through its local
 * admin socket (DATA_DIR/admin.sock, src/server/http/admin-socket.ts). The action runs inside the
 * server — audited as the admin `local-socket`, counted in its metrics, seen by it at once.
 * One function per command, each mapping it to its admin route; the command prints the answer
 * as its direct path does.
 */
export class AdminSocketClient {
  constructor(readonly path: string) {}

  /** One admin API call; an OAuth-shaped refusal (4xx) becomes the command's usage error (exit 2). */
  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const { status, text } = await new Promise<{ status: number; text: string }>((done, fail) => {
      const req = request({
        socketPath: this.path, method, path,
        headers: { 'user-agent': 'latchkey-cli', ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', fail);
      });
      req.on('error', fail);
      req.end(payload);
    });
    const document = text === '' ? {} : JSON.parse(text) as Record<string, unknown>;
    if (status >= 400 && status < 500) throw new UsageError(`${String(document.error)}: ${String(document.error_description ?? '')}`);
    if (status >= 500) throw new Error(`the running server answered ${status} on its admin socket (${String(document.error ?? '')})`);
    return document as T;
  }
}

/**
 * The admin socket of the server that owns DATA_DIR, when one runs and answers on it (embedded
 * store only); undefined otherwise (the command opens the store itself, or refuses as before).
 */
export async function runningServer(config: Config): Promise<AdminSocketClient | undefined> {
  if (config.databaseUrl) return undefined;
  if (dataDirOwner(config.dataDir) === undefined) return undefined;
  const path = adminSocketPath(config.dataDir);
  if (!existsSync(path) || !(await socketAnswers(path))) return undefined;
  return new AdminSocketClient(path);
}

type Doc = Record<string, unknown>;
const seg = encodeURIComponent;

/** The commands, each on its admin route. */
export const viaServer = {
  // keys
  keysList: (api: AdminSocketClient) => api.call<{ keys: Doc[] }>('GET', '/admin/keys'),
  keysRotate: (api: AdminSocketClient, alg?: string) => api.call<{ transitions: Doc[] }>('POST', '/admin/keys/rotate', alg ? { alg } : {}),
  keysRevoke: (api: AdminSocketClient, kid: string, reason: string) => api.call<{ transitions: Doc[] }>('POST', `/admin/keys/${seg(kid)}/revoke`, { reason }),
  keysReactivate: (api: AdminSocketClient, kid: string) => api.call<{ transitions: Doc[] }>('POST', `/admin/keys/${seg(kid)}/reactivate`, {}),
  keysReEncrypt: (api: AdminSocketClient) => api.call<{ tables: Array<{ table: string; re_encrypted: number; from_previous: number }> }>('POST', '/admin/keys/re-encrypt', {}),
  // users
  usersCreate: (api: AdminSocketClient, body: Doc) => api.call('POST', '/admin/users', body),
  usersList: async (api: AdminSocketClient) => {
    const all: Doc[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.call<{ users: Doc[]; next_cursor?: string }>('GET', `/admin/users?limit=200${cursor ? `&cursor=${seg(cursor)}` : ''}`);
      all.push(...page.users);
      cursor = page.next_cursor;
    } while (cursor);
    return all;
  },
  usersGet: (api: AdminSocketClient, login: string) => api.call('GET', `/admin/users/${seg(login)}`),
  usersSetDisabled: (api: AdminSocketClient, login: string, disabled: boolean) => api.call('POST', `/admin/users/${seg(login)}/${disabled ? 'disable' : 'enable'}`, {}),
  usersSetPassword: (api: AdminSocketClient, login: string, password: string, endSessions: boolean, revokeTokens: boolean) =>
    api.call<{ sessions_ended: number; families_revoked: number }>('POST', `/admin/users/${seg(login)}/password`, { password, end_sessions: endSessions, revoke_tokens: revokeTokens }),
  usersSessions: (api: AdminSocketClient, login: string) => api.call<{ sessions: Doc[] }>('GET', `/admin/users/${seg(login)}/sessions`),
  usersEndSessions: (api: AdminSocketClient, login: string, sid?: string) =>
    api.call<{ sessions_ended: number }>('DELETE', `/admin/users/${seg(login)}/sessions${sid !== undefined ? `/${seg(sid)}` : ''}`),
  usersMfaStatus: (api: AdminSocketClient, login: string) => api.call('GET', `/admin/users/${seg(login)}/mfa`),
  usersResetMfa: (api: AdminSocketClient, login: string) => api.call('POST', `/admin/users/${seg(login)}/mfa/reset`, {}),
  usersRequireMfaEnrolment: (api: AdminSocketClient, login: string) => api.call('POST', `/admin/users/${seg(login)}/mfa/require-enrolment`, {}),
  // tokens
  tokensRevokeUser: (api: AdminSocketClient, user: string, reason: string, clientId?: string) =>
    api.call('POST', `/admin/users/${seg(user)}/revoke-tokens`, { reason, ...(clientId !== undefined ? { client_id: clientId } : {}) }),
  tokensRevokeClient: (api: AdminSocketClient, clientId: string, reason: string) => api.call('POST', `/admin/clients/${seg(clientId)}/revoke-tokens`, { reason }),
  tokensGrantsOfUser: (api: AdminSocketClient, user: string) => api.call<{ grants: Doc[] }>('GET', `/admin/users/${seg(user)}/grants`),
  tokensGrantsOfClient: (api: AdminSocketClient, clientId: string) => api.call<{ grants: Doc[] }>('GET', `/admin/clients/${seg(clientId)}/grants`),
  tokensRevokeGrant: (api: AdminSocketClient, grantId: string, reason: string) => api.call('DELETE', `/admin/grants/${seg(grantId)}`, { reason }),
  tokensRevokeJti: (api: AdminSocketClient, jti: string, reason: string, clientId?: string) =>
    api.call('POST', '/admin/tokens/revoke', { jti, reason, ...(clientId !== undefined ? { client_id: clientId } : {}) }),
  // clients
  clientsList: (api: AdminSocketClient, unusedSince?: Date) =>
    api.call<{ clients: Doc[] }>('GET', `/admin/clients${unusedSince ? `?unused_since=${seg(unusedSince.toISOString())}` : ''}`),
  clientsShow: (api: AdminSocketClient, id: string) => api.call('GET', `/admin/clients/${seg(id)}`),
  clientsCreate: (api: AdminSocketClient, metadata: Doc, clientId?: string) => api.call('POST', '/admin/clients', { ...metadata, ...(clientId ? { client_id: clientId } : {}) }),
  clientsUpdate: (api: AdminSocketClient, id: string, metadata: Doc) => api.call('PATCH', `/admin/clients/${seg(id)}`, metadata),
  clientsRotateSecret: (api: AdminSocketClient, id: string, body: { overlap_seconds?: number; revoke_issued?: boolean; reason?: string }) =>
    api.call('POST', `/admin/clients/${seg(id)}/rotate-secret`, body),
  clientsRevokeIssued: (api: AdminSocketClient, id: string, reason: string) => api.call('POST', `/admin/clients/${seg(id)}/revoke-issued`, { reason }),
  clientsSetDisabled: (api: AdminSocketClient, id: string, disabled: boolean) => api.call('POST', `/admin/clients/${seg(id)}/${disabled ? 'disable' : 'enable'}`, {}),
  clientsDelete: (api: AdminSocketClient, id: string) => api.call('DELETE', `/admin/clients/${seg(id)}`),
  // trusted issuers
  issuersList: (api: AdminSocketClient) => api.call<unknown[]>('GET', '/admin/trusted-issuers'),
  issuersShow: (api: AdminSocketClient, name: string) => api.call('GET', `/admin/trusted-issuers/${seg(name)}`),
  issuersAdd: (api: AdminSocketClient, body: unknown) => api.call('POST', '/admin/trusted-issuers', body),
  issuersUpdate: (api: AdminSocketClient, name: string, body: unknown) => api.call('PUT', `/admin/trusted-issuers/${seg(name)}`, body),
  issuersSetDisabled: (api: AdminSocketClient, name: string, disabled: boolean) => api.call('POST', `/admin/trusted-issuers/${seg(name)}/${disabled ? 'disable' : 'enable'}`, {}),
  issuersRemove: (api: AdminSocketClient, name: string) => api.call('DELETE', `/admin/trusted-issuers/${seg(name)}`),
  // audit
  auditPage: (api: AdminSocketClient, query: URLSearchParams) => api.call('GET', `/admin/audit?${query.toString()}`),
};
