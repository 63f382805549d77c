import { parseArgs } from 'node:util';
import { auditEventDocument, auditPageDocument, encodeAuditCursor, parseAuditQuery } from '../platform/observability/audit-query.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { printJson } from './output.js';
import { withCliStore } from './store.js';

const HELP = `Usage: latchkey audit [--client-id ID] [--sub SUB] [--event NAME] [--jti JTI]
                      [--since TIME] [--until TIME] [--limit N] [--cursor C] [--json]

Prints audit events as JSON lines, oldest first (a timeline), at most --limit (default 100,
at most 1000). Filters combine; TIME is an RFC 3339 date-time with an offset. When more
events follow, the --cursor of the next page is printed on stderr. Example: every token
issued to a client in one hour:
  latchkey audit --client-id billing --event token.issued --since 2026-11-23T10:00:00Z --until 2026-11-23T11:00:00Z
--json: one JSON document instead, as GET /admin/audit answers:
  {"events": [...], "next_cursor": "..." or null}
In embedded mode this refuses while a server owns DATA_DIR.`;

export const auditCommand: Command = {
  name: 'audit',
  summary: 'query the audit trail',
  help: HELP,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'client-id': { type: 'string' }, sub: { type: 'string' }, event: { type: 'string' }, jti: { type: 'string' },
        since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
    const parsed = parseAuditQuery({
      client_id: values['client-id'], sub: values.sub, event: values.event, jti: values.jti,
      since: values.since, until: values.until, limit: values.limit, cursor: values.cursor,
    });
    if (!parsed.ok) throw new UsageError(`--${parsed.problem.replace('client_id:', 'client-id:')}`);
    const query = parsed.query;
    const config = configOrExit();
    return withCliStore(config, async (store) => {
      const page = await new AuditEventRepository(store.db).page(query);
      if (values.json) {
        printJson(auditPageDocument(page));
        return 0;
      }
      for (const row of page.events) process.stdout.write(`${JSON.stringify(auditEventDocument(row))}\n`);
      if (page.next) process.stderr.write(`more events follow: --cursor ${encodeAuditCursor(page.next)}\n`);
      return 0;
    });
  },
};
