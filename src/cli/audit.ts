import { isHttpsOrLoopbackHttp } from '../platform/uris.js';
import { parseArgs } from 'node:util';
import { auditPageDocument, encodeAuditCursor, parseAuditQuery } from '../platform/observability/audit-query.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { outputClosed, printJson } from './output.js';
import { withCliStore } from './store.js';
import { runningServer, viaServer } from './admin-socket.js';

const HELP = `Usage: latchkey audit [--client-id ID] [--sub SUB] [--event NAME] [--event-prefix PREFIX]
                      [--jti JTI] [--ip IP] [--user-agent TEXT] [--grant-type GRANT] [--scope SCOPE]
                      [--since TIME] [--until TIME] [--limit N] [--cursor C] [--json]
                      [--follow] [--server URL]

Prints audit events as JSON lines, oldest first (a timeline), at most --limit (default 100,
at most 1000). Filters combine: --ip is exact, --user-agent a substring, --scope one scope
token the event's scope contains, --event-prefix the start of the event name (token. for every
token event). TIME is an RFC 3339 date-time with an offset. When more events follow, the
--cursor of the next page is printed on stderr. Example: every token issued to a client in one hour:
  latchkey audit --client-id billing --event-prefix token.issued --since 2026-11-23T10:00:00Z --until 2026-11-23T11:00:00Z
(token.issued.summary rows count the client_credentials tokens, which are not stored one by one:
the log has each jti.)
--json: one JSON document instead, as GET /admin/audit answers:
  {"events": [...], "next_cursor": "..." or null}
--follow: prints the matching events as they are recorded, one JSON line each, from now (or
  from --since / --cursor) until interrupted (Ctrl-C) or the reader goes away; polls every
  second and shows an event about two seconds after it happened (events written late, after an
  outage of the database, are not shown). Not with --until, --limit or --json.
--server URL: reads through a running server's GET /admin/audit instead of the store, with
  the admin credential (an ADMIN_TOKENS secret) from the environment variable
  LATCHKEY_ADMIN_TOKEN. Without it, in embedded mode while a server owns DATA_DIR, the trail is read
through the server's local admin socket (DATA_DIR/admin.sock, ADMIN_SOCKET; off: it refuses).`;

type Params = Record<string, string | undefined>;
interface PageDocument { events: Array<Record<string, unknown>>; next_cursor: string | null }
/** One page of the trail for the query parameters GET /admin/audit takes. */
type Source = (params: Params) => Promise<PageDocument>;

/** How long --follow waits before showing an event: the audit buffer is written every second. */
const SETTLE_MS = 2000;
const POLL_MS = 1000;

function serverSource(url: string): Source {
  const token = process.env.LATCHKEY_ADMIN_TOKEN;
  if (!token) throw new UsageError('--server: set LATCHKEY_ADMIN_TOKEN to an admin credential (ADMIN_TOKENS secret); it is never taken on the command line');
  let base: URL;
  try {
    const server = new URL(url);
    // The admin credential goes only over https, or plain http to this machine.
    if (!isHttpsOrLoopbackHttp(server)) throw new UsageError('--server: must be https (http only on a loopback host): the admin credential is sent to it');
    // Kept under the server's own path (a reverse proxy's prefix), not replaced by it.
    base = new URL(`${server.pathname.replace(/\/+$/, '')}/admin/audit`, server);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError('--server: must be a URL such as http://127.0.0.1:3000');
  }
  return async (params) => {
    const target = new URL(base);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) target.searchParams.set(k, v);
    // No redirect is followed: it would carry the credential somewhere else.
    const res = await fetch(target, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, redirect: 'error' });
    const body = await res.json().catch(() => undefined) as (PageDocument & { error?: string; error_description?: string }) | undefined;
    if (res.status === 200 && body && Array.isArray(body.events)) return body;
    const what = body?.error ? `${body.error}${body.error_description ? `: ${body.error_description}` : ''}` : `HTTP ${res.status}`;
    if (res.status === 400 || res.status === 401) throw new UsageError(`--server: ${what}`);
    throw new Error(`--server: ${what}`);
  };
}

const lines = (events: Array<Record<string, unknown>>) => {
  for (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
};

/** Waits `ms`, or less when stopped. */
const pause = (ms: number, stopped: { value: boolean; wake?: () => void }) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    stopped.wake = () => { clearTimeout(timer); resolve(); };
  });

/**
 * Prints new events until SIGINT or a closed stdout: polls by keyset position (the cursor of the
 * last event printed), only up to SETTLE_MS ago, so an event buffered by an instance and written
 * a moment later than a newer one is not stepped over.
 */
async function follow(source: Source, params: Params): Promise<number> {
  const stopped: { value: boolean; wake?: () => void } = { value: false };
  const stop = () => { stopped.value = true; stopped.wake?.(); };
  process.once('SIGINT', stop);
  process.stdout.once('error', stop);
  const since = params.since ?? new Date().toISOString();
  let cursor = params.cursor;
  let failing = false;
  try {
    while (!stopped.value) {
      const until = new Date(Date.now() - SETTLE_MS);
      if (until.getTime() > Date.parse(since)) {
        try {
          for (;;) {
            const page = await source({ ...params, since, until: until.toISOString(), limit: '1000', cursor });
            lines(page.events);
            const last = page.events[page.events.length - 1];
            if (last) cursor = encodeAuditCursor({ at: new Date(String(last.at)), id: String(last.id) });
            failing = false;
            if (!page.next_cursor || stopped.value || outputClosed()) break;
          }
        } catch (err) {
          if (err instanceof UsageError) throw err;
          // A server restarting or a database away for a moment: said once, then retried.
          if (!failing) process.stderr.write(`audit --follow: ${(err as Error).message}; retrying every second\n`);
          failing = true;
        }
      }
      if (outputClosed()) break;
      await pause(POLL_MS, stopped);
    }
    return 0;
  } finally {
    process.removeListener('SIGINT', stop);
    process.stdout.removeListener('error', stop);
  }
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'query or follow the audit trail',
  help: HELP,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'client-id': { type: 'string' }, sub: { type: 'string' }, event: { type: 'string' }, jti: { type: 'string' },
        ip: { type: 'string' }, 'user-agent': { type: 'string' }, 'grant-type': { type: 'string' }, scope: { type: 'string' },
        'event-prefix': { type: 'string' },
        since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' },
        json: { type: 'boolean' }, follow: { type: 'boolean' }, server: { type: 'string' },
      },
    });
    const params: Params = {
      client_id: values['client-id'], sub: values.sub, event: values.event, jti: values.jti,
      ip: values.ip, user_agent: values['user-agent'], grant_type: values['grant-type'], scope: values.scope, event_prefix: values['event-prefix'],
      since: values.since, until: values.until, limit: values.limit, cursor: values.cursor,
    };
    const parsed = parseAuditQuery(params);
    if (!parsed.ok) throw new UsageError(`--${parsed.problem.replace(/^(client_id|user_agent|grant_type|event_prefix):/, (m) => m.replace('_', '-'))}`);
    if (values.follow) {
      for (const option of ['until', 'limit', 'json'] as const) if (values[option] !== undefined) throw new UsageError(`--follow: not with --${option}`);
    }
    const run = async (source: Source): Promise<number> => {
      if (values.follow) return follow(source, params);
      const page = await source(params);
      if (values.json) {
        printJson(page);
        return 0;
      }
      lines(page.events);
      if (page.next_cursor) process.stderr.write(`more events follow: --cursor ${page.next_cursor}\n`);
      return 0;
    };
    if (values.server !== undefined) return run(serverSource(values.server));
    const config = configOrExit();
    // Embedded store with a server running: the trail is read through its local admin socket.
    const api = await runningServer(config);
    if (api) {
      return run(async (p) => {
        const query = new URLSearchParams();
        for (const [k, v] of Object.entries(p)) if (v !== undefined) query.set(k, v);
        return await viaServer.auditPage(api, query) as unknown as PageDocument;
      });
    }
    return withCliStore(config, async (store) => {
      const repository = new AuditEventRepository(store.db);
      return run(async (p) => {
        const q = parseAuditQuery(p);
        if (!q.ok) throw new UsageError(q.problem);
        return auditPageDocument(await repository.page(q.query));
      });
    });
  },
};
