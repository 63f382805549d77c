/**
 * A PostgreSQL connection string as libpq reads it (PostgreSQL docs §34.1.1.2–3): several hosts
 * in one URL — `postgres://user:pw@db-a:5432,db-b:5432/latchkey?target_session_attrs=read-write`
 * — tried in order, and with `target_session_attrs=read-write` (or `primary`) only a server
 * that accepts writes is used. node-postgres reads one host only, so the string is split here
 * into one single-host URL per host (src/platform/db/primary.ts picks among them).
 */
export interface DatabaseTarget {
  /** The hosts in their order; empty for a plain single-host string (handed to node-postgres as it is). */
  hosts: Array<{ host: string; port: number }>;
  /** Only a server accepting writes will do (target_session_attrs read-write or primary). */
  readWrite: boolean;
  /** The connection string of host `index`: one host, target_session_attrs removed, the rest as given. */
  urlFor(index: number): string;
}

const URL_SHAPE = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/;
const TARGETS: Record<string, boolean> = { any: false, 'read-write': true, primary: true };

/** Parses DATABASE_URL; throws an Error whose message says what is wrong (never echoing the password). */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const shape = URL_SHAPE.exec(url);
  if (!shape) throw new Error('must be a postgres:// or postgresql:// URL');
  const [, scheme, authority = '', rest = ''] = shape;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const hostList = authority.slice(at + 1);
  const queryAt = rest.indexOf('?');
  const path = queryAt >= 0 ? rest.slice(0, queryAt) : rest;
  const query = new URLSearchParams(queryAt >= 0 ? rest.slice(queryAt + 1) : '');
  const target = query.get('target_session_attrs') ?? 'any';
  if (!(target in TARGETS)) throw new Error(`target_session_attrs=${target} is not supported (any, read-write or primary: Latchkey writes)`);
  // One host (or a Unix socket given as ?host=) and no target: the string as it is, to node-postgres.
  if (!hostList.includes(',') && !TARGETS[target]) return { hosts: [], readWrite: false, urlFor: () => url };
  if (hostList === '') throw new Error('must name a host when target_session_attrs is given');
  const entries = hostList.split(',');
  const hosts = entries.map((entry, i) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry);
    const port = m?.[2] === undefined ? 5432 : Number(m[2]);
    // Never quoted: a password holding an unencoded / ? or # ends the authority early and would
    // be part of what is quoted.
    if (!m || port < 1 || port > 65535) throw new Error(`host ${i + 1} of ${entries.length} is not host[:port] (percent-encode / ? # @ in the password)`);
    return { host: m[1]!, port };
  });
  query.delete('target_session_attrs');
  const search = query.size > 0 ? `?${query.toString()}` : '';
  return {
    hosts,
    readWrite: TARGETS[target]!,
    urlFor: (index) => {
      const h = hosts[index]!;
      return `${scheme}${userinfo}${h.host}:${h.port}${path}${search}`;
    },
  };
}
