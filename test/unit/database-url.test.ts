import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/platform/db/database-url.js';
import { loadConfig } from '../../src/server/config.js';

describe('DATABASE_URL as libpq reads it: several hosts, target_session_attrs', () => {
  it('a plain single-host string goes to node-postgres as it is (sockets, options and all)', () => {
    for (const url of ['postgres://u:p@db:5432/latchkey', 'postgres:///latchkey?host=/var/run/postgresql', 'postgresql://db/latchkey?sslmode=require']) {
      const t = parseDatabaseUrl(url);
      expect(t.hosts).toEqual([]);
      expect(t.readWrite).toBe(false);
      expect(t.urlFor(0)).toBe(url);
    }
  });

  it('several hosts: each its own single-host string, in order, default port 5432, target_session_attrs removed, other options kept', () => {
    const t = parseDatabaseUrl('postgres://lk:p%40ss@db-a:5433,db-b,[::1]:6000/latchkey?sslmode=require&target_session_attrs=read-write&application_name=x');
    expect(t.hosts).toEqual([{ host: 'db-a', port: 5433 }, { host: 'db-b', port: 5432 }, { host: '[::1]', port: 6000 }]);
    expect(t.readWrite).toBe(true);
    expect([0, 1, 2].map((i) => t.urlFor(i))).toEqual([
      'postgres://lk:p%40ss@db-a:5433/latchkey?sslmode=require&application_name=x',
      'postgres://lk:p%40ss@db-b:5432/latchkey?sslmode=require&application_name=x',
      'postgres://lk:p%40ss@[::1]:6000/latchkey?sslmode=require&application_name=x',
    ]);
  });

  it('read-write and primary ask for the primary; any (the default) takes the first that answers', () => {
    expect(parseDatabaseUrl('postgres://db?target_session_attrs=primary').readWrite).toBe(true);
    expect(parseDatabaseUrl('postgres://db/x?target_session_attrs=read-write').hosts).toEqual([{ host: 'db', port: 5432 }]);
    expect(parseDatabaseUrl('postgres://a,b/x?target_session_attrs=any').readWrite).toBe(false);
    expect(parseDatabaseUrl('postgres://a,b/x').readWrite).toBe(false);
  });

  it.each([
    ['mysql://db/x', 'must be a postgres:// or postgresql:// URL'],
    ['postgres://a,b/x?target_session_attrs=standby', 'target_session_attrs=standby is not supported (any, read-write or primary: Latchkey writes)'],
    ['postgres://a,b:99999/x', 'host 2 of 2 is not host[:port] (percent-encode / ? # @ in the password)'],
    ['postgres://a,,b/x', 'host 2 of 3 is not host[:port]'],
    // An unencoded / in the password ends the authority early: the message quotes none of it.
    ['postgres://app:s3cr/et@db-a,db-b/x?target_session_attrs=read-write', 'host 1 of 1 is not host[:port]'],
    ['postgres://u:secret@/x?target_session_attrs=read-write', 'must name a host when target_session_attrs is given'],
  ])('refuses %s', (url, message) => {
    expect(() => parseDatabaseUrl(url)).toThrow(message);
  });

  it('is checked at configuration time, and the message never echoes the password', () => {
    expect(() => loadConfig({ ISSUER: 'http://localhost:8080', DATABASE_URL: 'postgres://u:hunter2@a,b:0/x', KEY_ENCRYPTION_SECRET: 'k'.repeat(32) }))
      .toThrow(/DATABASE_URL: host 2 of 2 is not host\[:port\]/);
    for (const url of ['postgres://u:hunter2@a,b:0/x', 'postgres://u:hun/ter2@a,b/x?target_session_attrs=read-write']) {
      expect(() => loadConfig({ ISSUER: 'http://localhost:8080', DATABASE_URL: url, KEY_ENCRYPTION_SECRET: 'k'.repeat(32) })).toThrow(/DATABASE_URL/);
      try { loadConfig({ ISSUER: 'http://localhost:8080', DATABASE_URL: url, KEY_ENCRYPTION_SECRET: 'k'.repeat(32) }); } catch (err) { expect(String(err)).not.toMatch(/hun/); }
    }
    expect(loadConfig({ ISSUER: 'http://localhost:8080', DATABASE_URL: 'postgres://u:p@a,b/x?target_session_attrs=read-write', KEY_ENCRYPTION_SECRET: 'k'.repeat(32) }).databaseUrl)
      .toBe('postgres://u:p@a,b/x?target_session_attrs=read-write');
  });
});
