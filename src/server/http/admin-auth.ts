import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { NotFound } from '../../oauth/errors.js';
import { bearerToken, invalidToken } from './bearer.js';
import { requestAuditFields } from './audit-fields.js';

/** One admin API credential (ADMIN_TOKENS): the operator's name for it, and the secret. */
export interface AdminCredential {
  name: string;
  secret: string;
}

/** Who made an admin API call, for the audit trail: the credential's name, and the request. */
export interface AdminActor {
  by: 'admin_api';
  /** The name of the ADMIN_TOKENS credential used (`name:secret`), so an audit names who acted. */
  admin: string;
  ip: string;
  request_id: string;
  user_agent: string | undefined;
}

/**
 * The credential a presented bearer value is, compared by SHA-256 in constant time against every
 * configured one (equal lengths by construction); undefined for none.
 */
export function adminAuthenticator(credentials: readonly AdminCredential[]): (presented: string | undefined) => AdminCredential | undefined {
  const digests = credentials.map((c) => ({ credential: c, digest: createHash('sha256').update(c.secret).digest() }));
  return (presented) => {
    if (presented === undefined) return undefined;
    const digest = createHash('sha256').update(presented).digest();
    let found: AdminCredential | undefined;
    for (const d of digests) if (timingSafeEqual(d.digest, digest)) found = d.credential;
    return found;
  };
}

const admins = new WeakMap<FastifyRequest, AdminCredential>();

/** The name the audit trail gives a request that came through the local admin socket (DATA_DIR/admin.sock). */
export const LOCAL_SOCKET_ADMIN = 'local-socket';

/**
 * Connections accepted by the local admin socket's server (src/server/http/admin-socket.ts),
 * marked on accept: nothing a client sends can put a connection here.
 */
const localConnections = new WeakSet<Socket>();

/** Marks a connection accepted on the local admin socket: its requests are admin requests named `local-socket`. */
export function markLocalAdminConnection(socket: Socket): void {
  localConnections.add(socket);
}

/** Whether the request arrived on the local admin socket. */
export function isLocalAdminRequest(req: FastifyRequest): boolean {
  return localConnections.has(req.raw.socket);
}

/**
 * Puts every route of this plugin behind an ADMIN_TOKENS credential (401 invalid_token with a
 * Bearer challenge otherwise) and remembers which one, for adminActor. Every admin route group
 * calls this first. A request that came through the local admin socket needs no bearer (the
 * socket file's permissions authenticated it) and is named `local-socket`. Without ADMIN_TOKENS
 * the routes exist only for the socket: over HTTP they answer 404, as if absent.
 */
export function requireAdmin(app: FastifyInstance, credentials: readonly AdminCredential[]): void {
  const authenticate = adminAuthenticator(credentials);
  app.addHook('onRequest', async (req) => {
    if (isLocalAdminRequest(req)) {
      admins.set(req, { name: LOCAL_SOCKET_ADMIN, secret: '' });
      return;
    }
    if (credentials.length === 0) throw new NotFound(`no route for ${req.method} ${req.url.split('?')[0]}`);
    const credential = authenticate(bearerToken(req.headers.authorization));
    if (!credential) throw invalidToken('latchkey-admin', 'a valid admin bearer credential is required');
    admins.set(req, credential);
  });
}

/** The actor of an admin API request (after requireAdmin): the credential's name and the request's audit fields. */
export function adminActor(req: FastifyRequest): AdminActor {
  const credential = admins.get(req);
  if (!credential) throw new Error('adminActor outside an admin route (requireAdmin not registered)');
  const fields = requestAuditFields(req);
  // A Unix socket has no peer address.
  return { by: 'admin_api', admin: credential.name, ...fields, ip: fields.ip ?? 'local' };
}
