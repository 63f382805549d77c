import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { systemClock } from '../platform/clock.js';
import { refreshMetrics } from '../platform/observability/refresh-metrics.js';
import { FamilyRevocation } from '../oauth/refresh-families/revocation.js';
import { ConsentRepository } from '../oauth/consent-store.js';
import { RefreshTokenRepository } from '../oauth/refresh-families/store.js';
import { GRANT_REVOKED_CHANNEL, RevokedGrantsTable, RevokedSet } from '../oauth/revocation-state.js';
import { UserRepository } from '../users/user-store.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { withCliAudit, withCliStore } from './store.js';

const HELP = `Usage: latchkey tokens revoke [--user USER] [--client CLIENT_ID] --reason TEXT

  revoke --user USER --reason TEXT
      Revokes every refresh token family of a user (sub or username), and every access token
      issued from them.
  revoke --client CLIENT_ID --reason TEXT
      The same for every user of a client (a compromised client).
  revoke --user USER --client CLIENT_ID --reason TEXT
      One user's grants to one client: consent withdrawn, so the stored consent is deleted too.

Each revocation is an audit event (family.revoked) naming the OS user who ran the command and the
reason. Running servers see it at once (NOTIFY), at worst within 30 s.
In embedded mode this command refuses while a server owns DATA_DIR: use the admin API
(POST /admin/users/USER/revoke-tokens, POST /admin/clients/CLIENT_ID/revoke-tokens) instead.`;

export const tokensCommand: Command = {
  name: 'tokens',
  summary: 'revoke refresh token families of a user, a client, or a user+client pair',
  help: HELP,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { user: { type: 'string' }, client: { type: 'string' }, reason: { type: 'string' } } });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${HELP}`);
    }
    const { values, positionals } = parsed;
    if (positionals[0] !== 'revoke' || positionals.length > 1) throw new UsageError(`expected: tokens revoke\n\n${HELP}`);
    if (values.user === undefined && values.client === undefined) throw new UsageError('name --user, --client, or both');
    const reason = values.reason?.trim();
    if (!reason || reason.length > 500) throw new UsageError('--reason is required (1 to 500 characters): the audit trail says why');

    const config = configOrExit();
    return withCliStore(config, async (store) => {
      let userId: string | undefined;
      if (values.user !== undefined) {
        const users = new UserRepository(store.db);
        const user = await users.findById(values.user) ?? await users.findByLogin(values.user);
        if (!user) throw new UsageError(`no user "${values.user}"`);
        userId = user.id;
      }
      return withCliAudit(config, store, async (audit) => {
        const now = () => systemClock.now();
        const families = new FamilyRevocation({
          families: new RefreshTokenRepository(store.db),
          consents: new ConsentRepository(store.db),
          // Not started: add() writes the table and notifies the running servers.
          revokedGrants: new RevokedSet(GRANT_REVOKED_CHANNEL, new RevokedGrantsTable(store.db, now), store.notifier, now),
          audit,
          metrics: refreshMetrics(new Registry()),
          clock: systemClock,
        });
        const filter = { ...(userId !== undefined ? { userId } : {}), ...(values.client !== undefined ? { clientId: values.client } : {}) };
        const result = await families.revokeFamilies(filter, reason, { revoked_by: `cli:${userInfo().username}` });
        process.stdout.write(`${JSON.stringify({
          ...(userId !== undefined ? { sub: userId } : {}), ...(values.client !== undefined ? { client_id: values.client } : {}),
          families_revoked: result.families, ...(result.consentDeleted !== undefined ? { consent_deleted: result.consentDeleted } : {}),
        })}\n`);
        return 0;
      });
    });
  },
};
