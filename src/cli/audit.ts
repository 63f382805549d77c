import { parseArgs } from 'node:util';
import { AuditEventRepository } from '../store/audit-events.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { withCliStore } from './store.js';

const HELP = `Usage: latchkey audit [--client-id ID] [--sub SUB] [--event NAME] [--jti JTI]
                      [--since ISO-TIME] [--until ISO-TIME] [--limit N]

Prints audit events as JSON lines, oldest first (a timeline), at most --limit (default 100,
at most 1000). Filters combine. Example: every token issued to a client in one hour:
  latchkey audit --client-id billing --event token.issued --since 2026-11-23T10:00Z --until 2026-11-23T11:00Z
In embedded mode this refuses while a server owns DATA_DIR.`;

function instant(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--${name}: not a date-time (got "${value}")`);
  return d;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'query the audit trail',
  help: HELP,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'client-id': { type: 'string' }, sub: { type: 'string' }, event: { type: 'string' }, jti: { type: 'string' },
        since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' },
      },
    });
    const limit = values.limit === undefined ? 100 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('--limit: an integer from 1 to 1000');
    const query = {
      clientId: values['client-id'], sub: values.sub, event: values.event, jti: values.jti,
      since: instant('since', values.since), until: instant('until', values.until), limit,
    };
    const config = configOrExit();
    return withCliStore(config, async (store) => {
      for (const row of await new AuditEventRepository(store.db).query(query)) {
        process.stdout.write(`${JSON.stringify({ ...row, at: row.at.toISOString() })}\n`);
      }
      return 0;
    });
  },
};
