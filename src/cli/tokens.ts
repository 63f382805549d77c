import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { systemClock } from '../platform/clock.js';
import { refreshMetrics } from '../platform/observability/refresh-metrics.js';
import { FamilyRevocation } from '../oauth/refresh-families/revocation.js';
import { ConsentRepository } from '../oauth/consent-store.js';
import { grantView, RefreshTokenRepository } from '../oauth/refresh-families/store.js';
import { revocationHorizon } from '../oauth/tokens.js';
import type { Store } from '../platform/db/database.js';
import type { AuditLog } from '../platform/observability/audit.js';
import { ACCESS_TOKEN_REVOKED_CHANNEL, AccessTokenDenylist, GRANT_REVOKED_CHANNEL, RevokedGrantsTable, RevokedSet } from '../oauth/revocation-state.js';
import { UserRepository } from '../users/user-store.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { printJson } from './output.js';
import { runningServer, viaServer } from './admin-socket.js';
import { withCliAudit, withCliStore } from './store.js';

const HELP = `Usage: latchkey tokens <subcommand> [options]

  revoke --user USER --reason TEXT
      Revokes every refresh token family of a user (sub or username), and every access token
      issued from them.
  revoke --client CLIENT_ID --reason TEXT
      The same for every user of a client (a compromised client).
  revoke --user USER --client CLIENT_ID --reason TEXT
      One user's grants to one client: consent withdrawn, so the stored consent is deleted too.
  grants --user USER | --client CLIENT_ID [--json]
      The grants (refresh token families) of a user or of a client, newest first: grant id,
      client, user, state, created (time and IP), last rotation (time and IP), scope.
  revoke-grant GRANT_ID --reason TEXT
      The stolen-refresh-token step: revokes one grant (its refresh family and every access token
      issued from it); the user's other grants stay.
  revoke-jti JTI --reason TEXT [--client CLIENT_ID]
      Denylists one access token by its jti until the longest possible access-token lifetime from
      now: introspection and UserInfo answer inactive at once, on every instance.

Each revocation is an audit event (family.revoked, token.revoked) naming the OS user who ran the
command and the reason. Running servers see it at once (NOTIFY), at worst within 30 s.
In embedded mode, while a server owns DATA_DIR, the command goes through its local admin socket
(DATA_DIR/admin.sock, ADMIN_SOCKET) to the same admin API (POST /admin/users/USER/revoke-tokens,
POST /admin/clients/CLIENT_ID/revoke-tokens, GET /admin/users/USER/grants, DELETE
/admin/grants/GRANT_ID, POST /admin/tokens/revoke): the server acts, audited as the admin
local-socket. With the socket off it refuses.`;

/** Refresh family revocation from the CLI: the server's rule, with the NOTIFY that tells running servers. */
export function cliFamilyRevocation(store: Store, audit: AuditLog): FamilyRevocation {
  const now = () => systemClock.now();
  return new FamilyRevocation({
    families: new RefreshTokenRepository(store.db),
    consents: new ConsentRepository(store.db),
    // Not started: add() writes the table and notifies the running servers.
    revokedGrants: new RevokedSet(GRANT_REVOKED_CHANNEL, new RevokedGrantsTable(store.db, now), store.notifier, now),
    audit,
    metrics: refreshMetrics(new Registry()),
    clock: systemClock,
  });
}

/** The admin API's not_found for a user, as the direct path says it. */
const noUser = (login: string) => (err: unknown): never => {
  if (err instanceof UsageError && err.message.startsWith('not_found')) throw new UsageError(`no user "${login}"`);
  throw err;
};

function reasonOf(value: string | undefined): string {
  const reason = value?.trim();
  if (!reason || reason.length > 500) throw new UsageError('--reason is required (1 to 500 characters): the audit trail says why');
  return reason;
}

export const tokensCommand: Command = {
  name: 'tokens',
  summary: 'list and revoke grants (refresh token families) of a user, a client, or one; denylist one access token',
  help: HELP,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv, allowPositionals: true, strict: true,
        options: { user: { type: 'string' }, client: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' } },
      });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${HELP}`);
    }
    const { values, positionals } = parsed;
    const [sub, ...args] = positionals;
    const by = `cli:${userInfo().username}`;
    const config = configOrExit();
    const userIdOf = async (store: Store, login: string) => {
      const users = new UserRepository(store.db);
      const user = await users.findById(login) ?? await users.findByLogin(login);
      if (!user) throw new UsageError(`no user "${login}"`);
      return user.id;
    };

    // Embedded store with a server running: the command goes through its local admin socket.
    const api = await runningServer(config);

    switch (sub) {
      case 'grants': {
        if (args.length > 0 || (values.user === undefined) === (values.client === undefined)) throw new UsageError('name --user or --client (one of them)');
        const print = (grants: Record<string, unknown>[]) => {
          if (values.json) {
            printJson(grants);
          } else {
            for (const g of grants) {
              process.stdout.write(`${[g.grant_id, g.client_id, g.sub, g.state, `created ${g.created_at} from ${g.created_ip ?? '-'}`,
                `rotated ${g.last_rotated_at ?? 'never'} from ${g.last_rotated_ip ?? '-'}`, g.scope].join('\t')}\n`);
            }
          }
          return 0;
        };
        if (api) {
          return print(values.user !== undefined
            ? (await viaServer.tokensGrantsOfUser(api, values.user).catch(noUser(values.user))).grants
            : (await viaServer.tokensGrantsOfClient(api, values.client!)).grants);
        }
        return withCliStore(config, async (store) => {
          const filter = values.user !== undefined ? { userId: await userIdOf(store, values.user) } : { clientId: values.client! };
          const now = systemClock.now();
          return print((await new RefreshTokenRepository(store.db).listFamilies(filter, 500)).map((f) => grantView(f, now)));
        });
      }
      case 'revoke-grant': {
        if (args.length !== 1) throw new UsageError('expected: tokens revoke-grant GRANT_ID --reason TEXT');
        const reason = reasonOf(values.reason);
        if (api) {
          const result = await viaServer.tokensRevokeGrant(api, args[0]!, reason).catch((err: unknown) => {
            if (err instanceof UsageError && err.message.startsWith('not_found')) throw new UsageError(`no grant "${args[0]}"`);
            throw err;
          });
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return 0;
        }
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit) => {
          const result = await cliFamilyRevocation(store, audit).revokeOne(args[0]!, reason, { revoked_by: by });
          if (!result) throw new UsageError(`no grant "${args[0]}"`);
          process.stdout.write(`${JSON.stringify({ grant_id: result.family.id, client_id: result.family.client_id, sub: result.family.user_id, revoked: result.revoked })}\n`);
          return 0;
        }));
      }
      case 'revoke-jti': {
        if (args.length !== 1 || args[0]!.length > 200) throw new UsageError('expected: tokens revoke-jti JTI --reason TEXT [--client CLIENT_ID]');
        const reason = reasonOf(values.reason);
        const jti = args[0]!;
        if (api) {
          process.stdout.write(`${JSON.stringify(await viaServer.tokensRevokeJti(api, jti, reason, values.client))}\n`);
          return 0;
        }
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit) => {
          const now = () => systemClock.now();
          const until = revocationHorizon(now());
          // Not started: add() writes the denylist and notifies the running servers.
          await new RevokedSet(ACCESS_TOKEN_REVOKED_CHANNEL, new AccessTokenDenylist(store.db), store.notifier, now).add(jti, values.client ?? '', until, reason);
          audit.record('token.revoked', { revoked_by: by, jti, ...(values.client !== undefined ? { client_id: values.client } : {}), reason, token_type: 'access_token' });
          process.stdout.write(`${JSON.stringify({ jti, revoked_until: until.toISOString() })}\n`);
          return 0;
        }));
      }
      case 'revoke': {
        if (args.length > 0) throw new UsageError(`expected: tokens revoke\n\n${HELP}`);
        if (values.user === undefined && values.client === undefined) throw new UsageError('name --user, --client, or both');
        const reason = reasonOf(values.reason);
        if (api) {
          const result = values.user !== undefined
            ? await viaServer.tokensRevokeUser(api, values.user, reason, values.client).catch(noUser(values.user))
            : await viaServer.tokensRevokeClient(api, values.client!, reason);
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return 0;
        }
        return withCliStore(config, async (store) => {
          const userId = values.user !== undefined ? await userIdOf(store, values.user) : undefined;
          return withCliAudit(config, store, async (audit) => {
            const filter = { ...(userId !== undefined ? { userId } : {}), ...(values.client !== undefined ? { clientId: values.client } : {}) };
            const result = await cliFamilyRevocation(store, audit).revokeFamilies(filter, reason, { revoked_by: by });
            process.stdout.write(`${JSON.stringify({
              ...(userId !== undefined ? { sub: userId } : {}), ...(values.client !== undefined ? { client_id: values.client } : {}),
              families_revoked: result.families, ...(result.consentDeleted !== undefined ? { consent_deleted: result.consentDeleted } : {}),
            })}\n`);
            return 0;
          });
        });
      }
      default:
        throw new UsageError(`unknown subcommand "${sub ?? ''}"\n\n${HELP}`);
    }
  },
};
