import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { markLocalAdminConnection } from './admin-auth.js';

/** The local admin socket of an embedded server: DATA_DIR/admin.sock. */
export function adminSocketPath(dataDir: string): string {
  return join(resolve(dataDir), 'admin.sock');
}

/** A socket file another live process still answers on: refused, as the data directory lock is. */
export class AdminSocketBusyError extends Error {
  constructor(readonly path: string) {
    super(`${path} is in use by another running process: a second server must never serve the same data directory.`);
    this.name = 'AdminSocketBusyError';
  }
}

/** Whether something answers on the Unix socket at `path` (a stale file from a crash does not). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const probe = connect(path);
    probe.once('connect', () => { probe.destroy(); done(true); });
    probe.once('error', () => done(false));
  });
}

export interface AdminSocket {
  path: string;
  /** Starts listening (after the Fastify instance is ready): replaces a stale socket file, refuses a live one. */
  listen(): Promise<string>;
  /** Stops listening and removes the socket file. */
  close(): Promise<void>;
}

/**
 * The admin API on a Unix domain socket, for the CLI beside a running embedded server: a second
 * http.Server handing its requests to the same Fastify router, so the routes, hooks, metrics and
 * audit are the server's. Every connection it accepts is marked (markLocalAdminConnection):
 * requireAdmin lets those through as the admin `local-socket` without a bearer. The file is
 * mode 0600 in DATA_DIR (0700): only the server's user can connect.
 */
export function createAdminSocket(app: FastifyInstance, dataDir: string): AdminSocket {
  const path = adminSocketPath(dataDir);
  let server: Server | undefined;
  return {
    path,
    async listen() {
      if (existsSync(path)) {
        if (await socketAnswers(path)) throw new AdminSocketBusyError(path);
        rmSync(path, { force: true }); // stale: left by a crash
      }
      const s = createServer((req, res) => app.routing(req, res));
      s.on('connection', (socket) => markLocalAdminConnection(socket));
      await new Promise<void>((ok, fail) => {
        s.once('error', fail);
        s.listen({ path, readableAll: false, writableAll: false }, () => { s.off('error', fail); ok(); });
      });
      chmodSync(path, 0o600);
      server = s;
      return path;
    },
    async close() {
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((done) => {
        s.close(() => done());
        s.closeAllConnections();
      });
      rmSync(path, { force: true });
    },
  };
}
