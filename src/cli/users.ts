import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { systemClock } from '../platform/clock.js';
import type { Config } from '../server/config.js';
import type { Store } from '../platform/db/database.js';
import { KeyManager } from '../platform/keys/manager.js';
import { createOutboundFetcher } from '../platform/outbound/fetcher.js';
import type { AuditLog } from '../platform/observability/audit.js';
import { createSessionEndNotifier } from '../users/session-end.js';
import { ClientRepository } from '../oauth/clients/store.js';
import { SessionRepository, type SsoSession } from '../users/session-store.js';
import { UserExists, UserRepository, type User } from '../users/user-store.js';
import { createPasswordHasher, PasswordRejected } from '../users/passwords.js';
import { FactorAdministration, type FactorStatus } from '../capabilities/mfa/factor-administration.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { EXIT, printJson } from './output.js';
import { readSecretFromStdin } from './read-secret.js';
import { runningServer, viaServer, type AdminSocketClient } from './admin-socket.js';
import { keyEncryptionSecrets } from './keys.js';
import { withCliAudit, withCliStore } from './store.js';
import { cliFamilyRevocation } from './tokens.js';
import { AccountAdministration, accountView, EMAIL, sessionView, USERNAME } from '../users/account-administration.js';
import { SessionClientRepository } from '../users/session-clients-store.js';

const HELP = `Usage: latchkey users <subcommand> [options]

  create --username NAME [--email ADDR] [--email-verified] [--name TEXT] [--given-name TEXT]
         [--family-name TEXT] [--preferred-username TEXT] [--locale TAG] [--phone-number NUM]
         [--password-stdin]
      Creates a user. Without --password-stdin a random password is generated and printed once.
  set-password USERNAME [--password-stdin] [--keep-sessions] [--keep-tokens]
      Replaces the password (generated and printed once unless read from standard input). The
      compromised-account step: also ends every SSO session of the user (telling their apps by
      back-channel logout; exits 1 when they cannot be told) and revokes every grant (refresh
      families and their access tokens), unless --keep-sessions / --keep-tokens. Audited
      (user.password_set, with what was ended).
  sessions USERNAME [--json]
      The user's live SSO sessions: sid, created, last seen, factors (amr) and level (acr), and the
      clients registered for back-channel logout that took part in each (told when it ends).
  end-sessions USERNAME [--session SID]
      Ends one session (--session) or all of the user's, and tells their apps (back-channel
      logout; exits 1 when they cannot be told). Audited session.ended_by_admin.
  disable USERNAME | enable USERNAME
      A disabled user cannot sign in. Disabling also ends the user's SSO sessions and tells the
      apps of each (back-channel logout, when they registered a backchannel_logout_uri). When the
      apps cannot be told (e.g. the signing keys cannot be loaded), the user is disabled and signed
      out anyway and the command exits 1.
  list [--json]
      Lists users, one a line: username, sub, email and state, tab-separated. --json: one JSON
      document instead, an array of users (their claims, has_password; never a password hash).
  mfa-status USERNAME [--json]
      The user's second factors: passkeys (id, name, created, last used), a confirmed TOTP
      factor, unused recovery codes, and whether enrolment is required at the next sign-in.
  reset-mfa USERNAME
      The compromised-account runbook: removes every passkey, the TOTP factor and the recovery
      codes, requires enrolment of a new factor at the next sign-in, ends the user's SSO sessions
      and tells their apps (as disable does; exits 1 when the apps cannot be told).
  require-mfa-enrolment USERNAME
      Keeps the factors; the user must sign in with a second factor from the next sign-in on (one
      with none is led through enrolment right after the password). Ends the user's SSO sessions
      and tells their apps (exits 1 when they cannot be told).

Passwords are never taken from the command line (it is visible to other processes): pipe them in,
e.g. \`printf '%s' "$PW" | latchkey users set-password alice --password-stdin\`.
In embedded mode, while a server owns DATA_DIR, these commands go through its local admin socket
(DATA_DIR/admin.sock, ADMIN_SOCKET): the server acts, audited as the admin local-socket, and tells
the apps of ended sessions itself. create then takes only --username, --email, --email-verified and
the password. With the socket off they refuse.`;

const username = USERNAME;
const email = EMAIL;

function generatedPassword(): string {
  return randomBytes(18).toString('base64url'); // 144 bits, 24 characters
}

const describeUser = accountView;

async function findOrFail(repo: UserRepository, login: string | undefined): Promise<User> {
  if (!login) throw new UsageError('name the user: latchkey users <subcommand> USERNAME');
  const user = await repo.findByLogin(login);
  if (!user) throw new UsageError(`no user "${login}"`);
  return user;
}

/**
 * Back-channel logout for sessions the CLI ended (Back-Channel Logout 1.0), from this process:
 * the same logout tokens, signed with the server's keys, and audit events as the server's.
 * The user is already signed out (and disabled, or their factors reset) whatever happens here.
 */
async function tellApps(config: Config, store: Store, sessions: SsoSession[], audit: AuditLog, logger: Logger, by: Record<string, string>): Promise<number> {
  try {
    const keys = new KeyManager({ config, store, secret: keyEncryptionSecrets(config), clock: systemClock, logger, audit });
    await keys.load();
    const clients = new ClientRepository(store.db, store.notifier);
    const notifier = createSessionEndNotifier({
      keys, clock: systemClock, issuer: config.issuer, db: store.db, clients: { get: (id) => clients.find(id) },
      audit, logger, outbound: createOutboundFetcher(config), timeoutSeconds: config.backchannelLogoutTimeout,
    });
    const results = (await Promise.all(sessions.map((s) => notifier.sessionEnded(s, by)))).flat();
    const delivered = results.filter((r) => r.outcome === 'delivered').length;
    process.stdout.write(`apps told by back-channel logout: ${delivered} delivered, ${results.length - delivered} failed\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`latchkey users: the apps of the ended sessions could not be told: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}

function printFactorStatus(status: FactorStatus): void {
  const when = (d: Date | null) => d?.toISOString() ?? 'never';
  const lines = [`passkeys: ${status.passkeys.length}`];
  for (const p of status.passkeys) lines.push(`  ${p.id}\t${p.name}\tcreated ${when(p.created_at)}\tlast used ${when(p.last_used_at)}`);
  lines.push(`totp: ${status.totp ? `confirmed ${when(status.totp.confirmed_at)}, last used ${when(status.totp.last_used_at)}` : 'none'}`);
  lines.push(`recovery codes remaining: ${status.recovery_codes_remaining}`);
  lines.push(`enrolment required at next sign-in: ${status.enrolment_required ? 'yes' : 'no'}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Who acted, for the audit trail: the OS user running the CLI. */
const by = () => ({ by: `cli:${userInfo().username}` });

/**
 * The account administration the admin API uses, from the CLI: the sessions it ends are
 * collected, and their apps told once the command has the signing keys (tellApps).
 */
function cliAccounts(store: Store, audit: AuditLog): { accounts: AccountAdministration; ended: SsoSession[] } {
  const ended: SsoSession[] = [];
  const families = cliFamilyRevocation(store, audit);
  const accounts = new AccountAdministration({
    users: new UserRepository(store.db),
    sessions: new SessionRepository(store.db),
    sessionsEnded: (sessions) => { ended.push(...sessions); },
    revokeFamilies: (filter, reason, actor) => families.revokeFamilies(filter, reason, actor),
    audit,
    clock: systemClock,
  });
  return { accounts, ended };
}

type UserValues = { [k: string]: string | boolean | undefined };

/** The login named on the command line (as findOrFail asks for it). */
function loginOf(positionals: string[]): string {
  if (!positionals[0]) throw new UsageError('name the user: latchkey users <subcommand> USERNAME');
  return positionals[0];
}

/** A user's name as the server knows it; a user it does not know is the direct path's "no user". */
async function remoteUser(api: AdminSocketClient, login: string): Promise<string> {
  try {
    return String((await viaServer.usersGet(api, login)).username);
  } catch (err) {
    if (err instanceof UsageError && err.message.startsWith('not_found')) throw new UsageError(`no user "${login}"`);
    throw err;
  }
}

/**
 * The users subcommands through a running embedded server's admin socket: the same output as
 * the direct path. The apps of ended sessions are told by the server (back-channel logout),
 * after the command has returned.
 */
async function remoteUsers(api: AdminSocketClient, sub: string | undefined, positionals: string[], values: UserValues,
  newPassword: () => Promise<{ password: string; generated: boolean }>): Promise<number> {
  switch (sub) {
    case 'create': {
      const name = username.safeParse(values.username ?? '');
      if (!name.success) throw new UsageError(name.error.issues[0]!.message);
      const extra = ['name', 'given-name', 'family-name', 'preferred-username', 'locale', 'phone-number'].filter((k) => values[k] !== undefined);
      if (extra.length > 0) throw new UsageError(`--${extra[0]} cannot be set through the running server's admin socket (POST /admin/users takes username, email and password): stop the server, or set it later`);
      const { password, generated } = await newPassword();
      const user = await viaServer.usersCreate(api, { username: name.data, ...(values.email !== undefined ? { email: values.email } : {}), email_verified: values['email-verified'] === true, password });
      process.stdout.write(`created user ${String(user.username)} (sub ${String(user.sub)})\n`);
      if (generated) process.stdout.write(`password (shown once): ${password}\n`);
      return 0;
    }
    case 'set-password': {
      const name = await remoteUser(api, loginOf(positionals));
      const { password, generated } = await newPassword();
      const result = await viaServer.usersSetPassword(api, name, password, !values['keep-sessions'], !values['keep-tokens']);
      process.stdout.write(`password of ${name} replaced\n`);
      if (generated) process.stdout.write(`password (shown once): ${password}\n`);
      process.stdout.write(`sessions ended: ${result.sessions_ended}, grants revoked: ${result.families_revoked}\n`);
      return 0;
    }
    case 'sessions': {
      const views = (await viaServer.usersSessions(api, await remoteUser(api, loginOf(positionals)))).sessions;
      if (values.json) printJson(views);
      else for (const v of views) printSession(v);
      return 0;
    }
    case 'end-sessions': {
      const name = await remoteUser(api, loginOf(positionals));
      const sid = values.session as string | undefined;
      try {
        process.stdout.write(`sessions ended: ${(await viaServer.usersEndSessions(api, name, sid)).sessions_ended}\n`);
      } catch (err) {
        if (err instanceof UsageError && err.message.startsWith('not_found')) throw new UsageError(`no live session "${sid}" of ${name}`);
        throw err;
      }
      return 0;
    }
    case 'disable':
    case 'enable': {
      const name = await remoteUser(api, loginOf(positionals));
      const result = await viaServer.usersSetDisabled(api, name, sub === 'disable');
      process.stdout.write(`${name} ${sub}d\n`);
      if (typeof result.sessions_ended === 'number' && result.sessions_ended > 0) process.stdout.write(`sessions ended: ${result.sessions_ended}\n`);
      return 0;
    }
    case 'list': {
      const users = await viaServer.usersList(api);
      if (values.json) printJson(users);
      else for (const u of users) process.stdout.write(`${String(u.username)}\t${String(u.sub)}\t${String(u.email ?? '-')}\t${u.disabled ? 'disabled' : 'active'}\n`);
      return 0;
    }
    case 'mfa-status': {
      const status = await viaServer.usersMfaStatus(api, await remoteUser(api, loginOf(positionals)));
      const dated = (v: unknown) => (typeof v === 'string' ? new Date(v) : null);
      const s = status as unknown as { passkeys: Array<Record<string, unknown>>; totp: Record<string, unknown> | null; recovery_codes_remaining: number; enrolment_required: boolean };
      if (values.json) printJson(status);
      else printFactorStatus({
        ...s,
        passkeys: s.passkeys.map((p) => ({ ...p, created_at: dated(p.created_at)!, last_used_at: dated(p.last_used_at) })),
        totp: s.totp ? { ...s.totp, confirmed_at: dated(s.totp.confirmed_at)!, last_used_at: dated(s.totp.last_used_at) } : null,
      } as unknown as FactorStatus);
      return 0;
    }
    case 'reset-mfa':
    case 'require-mfa-enrolment': {
      const name = await remoteUser(api, loginOf(positionals));
      const result = sub === 'reset-mfa' ? await viaServer.usersResetMfa(api, name) : await viaServer.usersRequireMfaEnrolment(api, name);
      if (sub === 'reset-mfa') {
        const removed = (result.removed ?? result) as Record<string, unknown>;
        process.stdout.write(`second factors of ${name} removed: passkeys ${String(removed.passkeys)}, totp ${removed.totp ? 1 : 0}, recovery codes ${String(removed.recovery_codes)}\n`);
      }
      process.stdout.write(`${name} must enrol a second factor at the next sign-in\n`);
      if (typeof result.sessions_ended === 'number' && result.sessions_ended > 0) process.stdout.write(`sessions ended: ${result.sessions_ended}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand "${sub ?? ''}"\n\n${HELP}`);
  }
}

function printSession(v: Record<string, unknown>): void {
  process.stdout.write(`${[v.sid, `created ${String(v.created_at)}`, `last seen ${String(v.last_seen_at)}`, `amr ${(v.amr as string[]).join(',')}`,
    `acr ${String(v.acr ?? '-')}`, `logout clients ${(v.backchannel_logout_clients as string[]).join(',') || '-'}`].join('\t')}\n`);
}

export const usersCommand: Command = {
  name: 'users',
  summary: 'create, list, disable users, set their passwords, reset their second factors',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        username: { type: 'string' }, email: { type: 'string' }, 'email-verified': { type: 'boolean' },
        name: { type: 'string' }, 'given-name': { type: 'string' }, 'family-name': { type: 'string' },
        'preferred-username': { type: 'string' }, locale: { type: 'string' }, 'phone-number': { type: 'string' },
        'password-stdin': { type: 'boolean' }, json: { type: 'boolean' },
        'keep-sessions': { type: 'boolean' }, 'keep-tokens': { type: 'boolean' }, session: { type: 'string' },
      },
    });
    if (values.json && sub !== 'list' && sub !== 'mfa-status' && sub !== 'sessions') throw new UsageError('--json goes with list, sessions and mfa-status');
    const config = configOrExit();
    const hasher = () => createPasswordHasher({ ...config.argon2, minLength: config.passwordMinLength });
    const newPassword = async () => (values['password-stdin'] ? { password: await readSecretFromStdin(), generated: false } : { password: generatedPassword(), generated: true });
    const now = () => systemClock.now();
    // Embedded store with a server running: the command goes through its local admin socket.
    const api = await runningServer(config);
    if (api) return remoteUsers(api, sub, positionals, values, newPassword);

    switch (sub) {
      case 'create': {
        const name = username.safeParse(values.username ?? '');
        if (!name.success) throw new UsageError(name.error.issues[0]!.message);
        if (values.email !== undefined && !email.safeParse(values.email).success) throw new UsageError('email: not a valid address');
        const { password, generated } = await newPassword();
        let hash: string;
        try { hash = await (await hasher()).hash(password); } catch (err) {
          if (err instanceof PasswordRejected) throw new UsageError(err.message);
          throw err;
        }
        const profile = Object.fromEntries(Object.entries({
          name: values.name, given_name: values['given-name'], family_name: values['family-name'],
          preferred_username: values['preferred-username'] ?? name.data, locale: values.locale,
        }).filter(([, v]) => v !== undefined)) as Record<string, string>;
        return withCliStore(config, async (store) => {
          try {
            const user = await new UserRepository(store.db).create({
              username: name.data, email: values.email ?? null, email_verified: values['email-verified'] ?? false,
              phone_number: values['phone-number'] ?? null, profile, password_hash: hash,
            }, now());
            process.stdout.write(`created user ${user.username} (sub ${user.id})\n`);
            if (generated) process.stdout.write(`password (shown once): ${password}\n`);
            return 0;
          } catch (err) {
            if (err instanceof UserExists) throw new UsageError(err.message);
            throw err;
          }
        });
      }
      case 'set-password': {
        const { password, generated } = await newPassword();
        let hash: string;
        try { hash = await (await hasher()).hash(password); } catch (err) {
          if (err instanceof PasswordRejected) throw new UsageError(err.message);
          throw err;
        }
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit, logger) => {
          const repo = new UserRepository(store.db);
          const user = await findOrFail(repo, positionals[0]);
          const { accounts, ended } = cliAccounts(store, audit);
          const result = await accounts.setPassword(user, hash, { endSessions: !values['keep-sessions'], revokeTokens: !values['keep-tokens'] }, by());
          process.stdout.write(`password of ${user.username} replaced\n`);
          if (generated) process.stdout.write(`password (shown once): ${password}\n`);
          process.stdout.write(`sessions ended: ${result.sessions_ended}, grants revoked: ${result.families_revoked}\n`);
          return ended.length === 0 ? 0 : tellApps(config, store, ended, audit, logger, by());
        }));
      }
      case 'sessions':
        return withCliStore(config, async (store) => {
          const user = await findOrFail(new UserRepository(store.db), positionals[0]);
          const live = await new SessionRepository(store.db).liveOf(user.id, now());
          const clients = await new SessionClientRepository(store.db).clientsOf(live.map((s) => s.sid));
          const views = live.map((s) => sessionView(s, clients.get(s.sid) ?? []));
          if (values.json) {
            printJson(views);
          } else {
            for (const v of views) printSession(v);
          }
          return 0;
        });
      case 'end-sessions':
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit, logger) => {
          const user = await findOrFail(new UserRepository(store.db), positionals[0]);
          const { accounts, ended } = cliAccounts(store, audit);
          const result = await accounts.endSessions(user, values.session, by());
          if (!result) throw new UsageError(`no live session "${values.session}" of ${user.username}`);
          process.stdout.write(`sessions ended: ${result.length}\n`);
          return ended.length === 0 ? 0 : tellApps(config, store, ended, audit, logger, by());
        }));
      case 'disable':
      case 'enable':
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit, logger) => {
          const user = await findOrFail(new UserRepository(store.db), positionals[0]);
          // The admin API's rule: a disabled user is signed out everywhere at once, and the apps of each session are told.
          const { accounts, ended } = cliAccounts(store, audit);
          await accounts.setDisabled(user, sub === 'disable', by());
          process.stdout.write(`${user.username} ${sub}d\n`);
          if (ended.length === 0) return 0;
          process.stdout.write(`sessions ended: ${ended.length}\n`);
          return tellApps(config, store, ended, audit, logger, by());
        }));
      case 'list':
        return withCliStore(config, async (store) => {
          const users = await new UserRepository(store.db).list();
          if (values.json) {
            printJson(users.map(describeUser));
          } else {
            for (const u of users) process.stdout.write(`${u.username}\t${u.id}\t${u.email ?? '-'}\t${u.disabled ? 'disabled' : 'active'}\n`);
          }
          return 0;
        });
      case 'mfa-status':
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit) => {
          const user = await findOrFail(new UserRepository(store.db), positionals[0]);
          const status = await new FactorAdministration(store.db, audit, systemClock).status(user.id);
          if (values.json) printJson(status); else printFactorStatus(status);
          return 0;
        }));
      case 'reset-mfa':
      case 'require-mfa-enrolment':
        return withCliStore(config, async (store) => withCliAudit(config, store, async (audit, logger) => {
          const user = await findOrFail(new UserRepository(store.db), positionals[0]);
          const factors = new FactorAdministration(store.db, audit, systemClock);
          const by = { by: `cli:${userInfo().username}` };
          if (sub === 'reset-mfa') {
            const removed = await factors.reset(user.id, by);
            process.stdout.write(`second factors of ${user.username} removed: passkeys ${removed.passkeys}, totp ${removed.totp ? 1 : 0}, recovery codes ${removed.recovery_codes}\n`);
          } else {
            await factors.requireEnrolment(user.id, by);
          }
          process.stdout.write(`${user.username} must enrol a second factor at the next sign-in\n`);
          // Factors gone or distrusted: the sessions signed in with them end, and their apps are told.
          const ended = await new SessionRepository(store.db).endAllOf(user.id, now());
          if (ended.length === 0) return 0;
          process.stdout.write(`sessions ended: ${ended.length}\n`);
          return tellApps(config, store, ended, audit, logger, by);
        }));
      default:
        throw new UsageError(`unknown subcommand "${sub ?? ''}"\n\n${HELP}`);
    }
  },
};
