import { mkdtempSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { adminActor, requireAdmin } from '../../src/server/http/admin-auth.js';
import { AdminSocketBusyError, createAdminSocket } from '../../src/server/http/admin-socket.js';

/** A GET over the Unix socket: status and body. */
function viaSocket(path: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    request({ socketPath: path, path: url, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => done({ status: res.statusCode!, body }));
    }).on('error', fail).end();
  });
}

describe('the local admin socket', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });

  async function app(credentials: Array<{ name: string; secret: string }>) {
    const fastify = Fastify();
    await fastify.register(async (scoped) => {
      requireAdmin(scoped, credentials);
      scoped.get('/admin/whoami', async (req) => ({ admin: adminActor(req).admin, ip: adminActor(req).ip }));
    });
    await fastify.ready();
    closers.push(() => fastify.close());
    return fastify;
  }

  it('is an admin request named local-socket without a bearer; over HTTP the bearer is still required (404 without ADMIN_TOKENS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-as-'));
    const fastify = await app([]);
    const socket = createAdminSocket(fastify, dir);
    closers.push(() => socket.close());
    expect(await socket.listen()).toBe(join(dir, 'admin.sock'));
    expect(statSync(socket.path).mode & 0o777).toBe(0o600);
    expect(await viaSocket(socket.path, '/admin/whoami')).toEqual({ status: 200, body: JSON.stringify({ admin: 'local-socket', ip: 'local' }) });
    // Over HTTP (inject: not the socket's connection) nothing a client sends makes it local.
    expect((await fastify.inject({ url: '/admin/whoami' })).statusCode).toBe(404);
    expect((await fastify.inject({ url: '/admin/whoami', headers: { authorization: 'Bearer local-socket' } })).statusCode).toBe(404);
    await socket.close();
    expect(existsSync(socket.path)).toBe(false);
  });

  it('with ADMIN_TOKENS, HTTP needs the bearer (401 without) and names its credential; the socket still needs none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-as-'));
    const secret = 'an-admin-secret-of-at-least-thirty-two-chars';
    const fastify = await app([{ name: 'ops', secret }]);
    const socket = createAdminSocket(fastify, dir);
    closers.push(() => socket.close());
    await socket.listen();
    expect((await fastify.inject({ url: '/admin/whoami' })).statusCode).toBe(401);
    expect((await fastify.inject({ url: '/admin/whoami', headers: { authorization: `Bearer ${secret}` } })).json()).toEqual({ admin: 'ops', ip: '127.0.0.1' });
    expect(JSON.parse((await viaSocket(socket.path, '/admin/whoami')).body)).toEqual({ admin: 'local-socket', ip: 'local' });
  });

  it('replaces a stale socket file, refuses one another live process answers on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-as-'));
    writeFileSync(join(dir, 'admin.sock'), ''); // left behind: nothing answers
    const fastify = await app([]);
    const socket = createAdminSocket(fastify, dir);
    await socket.listen();
    expect(statSync(socket.path).isSocket()).toBe(true);
    await socket.close();

    const other = createServer();
    await new Promise<void>((ok) => other.listen(join(dir, 'admin.sock'), ok));
    closers.push(() => new Promise<void>((ok) => other.close(() => ok())));
    await expect(createAdminSocket(fastify, dir).listen()).rejects.toBeInstanceOf(AdminSocketBusyError);
    expect(existsSync(join(dir, 'admin.sock'))).toBe(true);
  });
});
