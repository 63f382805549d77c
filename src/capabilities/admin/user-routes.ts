import { reasonOf as bodyReason } from './family-routes.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import { CLIENT_ID } from '../../oauth/client.js';
import { InvalidRequest, NotFound } from '../../oauth/errors.js';
import { grantView, RefreshTokenRepository } from '../../oauth/refresh-families/store.js';
import { revocationHorizon } from '../../oauth/tokens.js';
import type { Clock } from '../../platform/clock.js';
import type { Database } from '../../platform/db/schema.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import type { Services } from '../../server/context.js';
import { adminActor } from '../../server/http/admin-auth.js';
import { AccountAdministration, type AccountActor, accountView, EMAIL, sessionView, USERNAME } from '../../users/account-administration.js';
import { PasswordRejected } from '../../users/passwords.js';
import { SessionClientRepository } from '../../users/session-clients-store.js';
import { SessionRepository } from '../../users/session-store.js';
import { UserExists, type User } from '../../users/user-store.js';

const CONTROL = /[\u0000-\u001f\u007f]/;
/** Page sizes of the user listing. */
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;
/** A user's or a client's grants listed at once (newest first). */
const MAX_GRANTS = 500;

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The administrator's reason (body or ?reason=): required, so the audit trail always says why. */
/** The administrator's reason, from the body or (for a DELETE) the query: the one rule of family-routes.ts. */
function reasonOf(req: FastifyRequest): string {
  return bodyReason({ reason: objectBody(req.body).reason ?? (req.query as Record<string, unknown>).reason });
}

function optionalBoolean(body: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = body[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new InvalidRequest(`${name} must be true or false`);
  return v;
}

function passwordOf(body: Record<string, unknown>, required: boolean): string | undefined {
  const p = body.password;
  if (p === undefined && !required) return undefined;
  if (typeof p !== 'string') throw new InvalidRequest('password must be a string');
  return p;
}

export interface UserAdminParts {
  services: Services;
  db: Kysely<Database>;
  /** The server's metrics registry (latchkey_admin_account_actions_total). */
  registry: Registry;
  audit: AuditLog;
  clock: Clock;
}

/**
 * Admin API for the stolen-refresh-token and compromised-account runbooks: users (list, search,
 * create, disable, enable, set password — ending sessions and grants by default), their SSO
 * sessions (list, end one, end all), their grants and a client's (list, revoke one), and one
 * access token by jti. Registered inside the admin plugin (routes.ts), behind requireAdmin;
 * every change is audited with the admin credential's name.
 */
export function userAdminRoutes(app: FastifyInstance, parts: UserAdminParts): void {
  const { services, db } = parts;
  const sessions = new SessionRepository(db);
  const sessionClients = new SessionClientRepository(db);
  const families = new RefreshTokenRepository(db);
  const actions = new Counter({
    name: 'latchkey_admin_account_actions_total',
    help: 'Operator actions on accounts, sessions, grants and access tokens through the admin API, by action.',
    labelNames: ['action'] as const,
    registers: [parts.registry],
  });
  const accounts = new AccountAdministration({
    users: services.users,
    sessions,
    sessionsEnded: (ended, fields) => { for (const s of ended) void services.sessionEnd.sessionEnded(s, fields as Record<string, string | undefined>); },
    revokeFamilies: (filter, reason, actor) => services.families.revokeFamilies(filter, reason, actor),
    audit: parts.audit,
    clock: parts.clock,
    counted: (action, n = 1) => actions.inc({ action }, n),
  });
  const actor = (req: FastifyRequest): AccountActor => ({ ...adminActor(req) });
  const now = () => parts.clock.now();

  const userOf = async (req: FastifyRequest): Promise<User> => {
    const login = (req.params as { login: string }).login;
    // A name with a NUL or other control character is no user (and must not reach the database).
    const user = CONTROL.test(login) || login.length > 254 ? undefined : await services.users.findById(login) ?? await services.users.findByLogin(login);
    if (!user) throw new NotFound('no such user');
    return user;
  };
  const hashed = async (password: string) => {
    try {
      return await services.hasher.hash(password);
    } catch (err) {
      if (err instanceof PasswordRejected) throw new InvalidRequest(err.message);
      throw err;
    }
  };

  // GET /admin/users?q=&limit=&cursor=: keyset pages ordered by username; q matches username or e-mail.
  app.get('/admin/users', async (req) => {
    const query = req.query as Record<string, unknown>;
    const q = query.q;
    if (q !== undefined && (typeof q !== 'string' || q.length > 254 || CONTROL.test(q))) throw new InvalidRequest('q must be a string of at most 254 characters');
    let limit = DEFAULT_LIMIT;
    if (query.limit !== undefined) {
      limit = typeof query.limit === 'string' && /^[0-9]{1,4}$/.test(query.limit) ? Number(query.limit) : 0;
      if (limit < 1 || limit > MAX_LIMIT) throw new InvalidRequest(`limit must be an integer from 1 to ${MAX_LIMIT}`);
    }
    let after: string | undefined;
    if (query.cursor !== undefined) {
      after = typeof query.cursor === 'string' ? Buffer.from(query.cursor, 'base64url').toString('utf8') : '';
      if (!USERNAME.safeParse(after).success) throw new InvalidRequest('cursor is not one this server gave');
    }
    // One more than the page, to know whether there is a next one.
    const rows = await services.users.search({ q: q as string | undefined, limit: limit + 1, after });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      users: page.map(accountView),
      ...(rows.length > limit && last ? { next_cursor: Buffer.from(last.username.toLowerCase()).toString('base64url') } : {}),
    };
  });

  // POST /admin/users {"username", "email"?, "email_verified"?, "password"?}: without a password the account has none until one is set.
  app.post('/admin/users', async (req, reply) => {
    const body = objectBody(req.body);
    const username = USERNAME.safeParse(body.username);
    if (!username.success) throw new InvalidRequest(username.error.issues[0]!.message);
    if (body.email !== undefined && body.email !== null && !EMAIL.safeParse(body.email).success) throw new InvalidRequest('email: not a valid address');
    const emailVerified = optionalBoolean(body, 'email_verified', false);
    const password = passwordOf(body, false);
    const hash = password === undefined ? null : await hashed(password);
    let user: User;
    try {
      user = await services.users.create({
        username: username.data, email: (body.email as string | undefined) ?? null, email_verified: emailVerified,
        profile: { preferred_username: username.data }, password_hash: hash,
      }, now());
    } catch (err) {
      if (err instanceof UserExists) throw new InvalidRequest(err.message);
      throw err;
    }
    parts.audit.record('user.created', { sub: user.id, username: user.username, has_password: hash !== null, ...actor(req) });
    actions.inc({ action: 'create' });
    return reply.code(201).send(accountView(user));
  });

  app.get('/admin/users/:login', async (req) => accountView(await userOf(req)));

  app.post('/admin/users/:login/disable', async (req) => {
    const user = await userOf(req);
    const result = await accounts.setDisabled(user, true, actor(req));
    return { ...accountView({ ...user, disabled: true }), ...result };
  });

  app.post('/admin/users/:login/enable', async (req) => {
    const user = await userOf(req);
    await accounts.setDisabled(user, false, actor(req));
    return accountView({ ...user, disabled: false });
  });

  // POST /admin/users/:login/password {"password", "end_sessions"?: true, "revoke_tokens"?: true}
  app.post('/admin/users/:login/password', async (req) => {
    const body = objectBody(req.body);
    const password = passwordOf(body, true)!;
    const endSessions = optionalBoolean(body, 'end_sessions', true);
    const revokeTokens = optionalBoolean(body, 'revoke_tokens', true);
    const user = await userOf(req);
    const result = await accounts.setPassword(user, await hashed(password), { endSessions, revokeTokens }, actor(req));
    return { sub: user.id, ...result };
  });

  // A user's live SSO sessions, newest first, with the clients that took part in each.
  app.get('/admin/users/:login/sessions', async (req) => {
    const user = await userOf(req);
    const live = await sessions.liveOf(user.id, now());
    const clients = await sessionClients.clientsOf(live.map((s) => s.sid));
    return { sub: user.id, sessions: live.map((s) => sessionView(s, clients.get(s.sid) ?? [])) };
  });

  app.delete('/admin/users/:login/sessions/:sid', async (req) => {
    const user = await userOf(req);
    const sid = (req.params as { sid: string }).sid;
    const ended = CONTROL.test(sid) ? undefined : await accounts.endSessions(user, sid, actor(req));
    if (!ended) throw new NotFound('no such live session of this user');
    return { sub: user.id, sessions_ended: 1 };
  });

  app.delete('/admin/users/:login/sessions', async (req) => {
    const user = await userOf(req);
    const ended = (await accounts.endSessions(user, undefined, actor(req)))!;
    return { sub: user.id, sessions_ended: ended.length };
  });

  // Grants: the refresh token families of a user or of a client.
  app.get('/admin/users/:login/grants', async (req) => {
    const user = await userOf(req);
    const at = now();
    return { sub: user.id, grants: (await families.listFamilies({ userId: user.id }, MAX_GRANTS)).map((f) => grantView(f, at)) };
  });

  app.get('/admin/clients/:client_id/grants', async (req) => {
    const clientId = (req.params as { client_id: string }).client_id;
    if (!CLIENT_ID.test(clientId)) throw new NotFound('no such client');
    const listed = await families.listFamilies({ clientId }, MAX_GRANTS);
    // A client deleted since still lists the grants it left; a client that never was is not found.
    if (listed.length === 0) await services.registry.get(clientId);
    const at = now();
    return { client_id: clientId, grants: listed.map((f) => grantView(f, at)) };
  });

  // DELETE /admin/grants/:grant_id {"reason"}: one family and its access tokens; the user's other grants stay.
  app.delete('/admin/grants/:grant_id', async (req) => {
    const reason = reasonOf(req);
    const grantId = (req.params as { grant_id: string }).grant_id;
    const { by, ...fields } = actor(req);
    const result = CONTROL.test(grantId) || grantId.length > 200 ? undefined : await services.families.revokeOne(grantId, reason, { revoked_by: by, ...fields });
    if (!result) throw new NotFound('no such grant');
    if (result.revoked) actions.inc({ action: 'revoke_grant' });
    return { grant_id: result.family.id, client_id: result.family.client_id, sub: result.family.user_id, revoked: result.revoked };
  });

  // POST /admin/tokens/revoke {"jti", "client_id"?, "reason"}: one access token, on every instance at once.
  app.post('/admin/tokens/revoke', async (req) => {
    const body = objectBody(req.body);
    const reason = reasonOf(req);
    const jti = body.jti;
    if (typeof jti !== 'string' || jti === '' || jti.length > 200 || CONTROL.test(jti)) throw new InvalidRequest('jti must be a string of 1 to 200 characters');
    const clientId = body.client_id;
    if (clientId !== undefined && (typeof clientId !== 'string' || !CLIENT_ID.test(clientId))) throw new InvalidRequest('client_id must be a client id');
    // Until the longest lifetime any access token can have: whatever its exp, it is dead until then.
    const until = revocationHorizon(now());
    await services.denylistAccessToken(jti, clientId ?? '', until);
    const { by, ...fields } = actor(req);
    parts.audit.record('token.revoked', { ...fields, revoked_by: by, jti, ...(clientId !== undefined ? { client_id: clientId } : {}), reason, token_type: 'access_token' });
    actions.inc({ action: 'revoke_access_token' });
    return { jti, revoked_until: until.toISOString() };
  });
}
