import { systemClock } from '../platform/clock.js';
import type { Config } from '../server/config.js';
import { DataDirBusyError, embeddedKeyEncryptionSecret, lockDataDir } from '../platform/db/data-dir.js';
import { openStore } from '../platform/db/database.js';
import { migrate } from '../platform/db/migrator.js';
import { SIGNING_ALGS, type SigningAlg } from '../platform/keys/keyring.js';
import { KeyLifecycleError } from '../platform/keys/lifecycle.js';
import { KeyManager, type AppliedTransition } from '../platform/keys/manager.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';
import { createAuditLog } from '../platform/observability/audit.js';
import { createLogger } from '../platform/observability/logger.js';
import { describeSigningKey, describeTransition, KeyAdministration } from '../platform/keys/administration.js';
import { TotpFactors } from '../capabilities/mfa/totp.js';
import type { KeyEncryptionSecrets } from '../platform/keys/encryption.js';
import { MIGRATIONS as migrations } from '../server/capabilities.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { printJson } from './output.js';
import { runningServer, viaServer, type AdminSocketClient } from './admin-socket.js';

const HELP = `Usage: latchkey keys <subcommand> [options]

Subcommands:
  list [--json]                every signing key: kid, algorithm, state and timestamps, as a
                               table; --json: one JSON document instead, an array of keys
                               (never key material: the public key is in the JWKS)
  rotate [--alg ALG]           promote the next key to active now and create a new next key,
                               for ALG or every algorithm in SIGNING_ALGS. A next key published
                               for less than KEY_PUBLISH_AHEAD is promoted anyway, with a
                               warning: verifiers holding an older cached JWKS reject its tokens
                               until they refetch it.
  revoke KID [--reason TEXT]   emergency: unpublish the key and stop trusting it at once (tokens
                               it signed fail verification). If it was the active key, the next
                               key signs from now on and a new next key is created.
  reactivate KID               rollback of a bad rotation: the retired key KID (still published)
                               signs again; the algorithm's active key is retired (still
                               published, its tokens keep verifying); the next key stays. A
                               revoked or removed key can never be re-activated.
  re-encrypt                   re-seal every signing key and TOTP secret under the current
                               KEY_ENCRYPTION_SECRET (one transaction per table). Run it while
                               KEY_ENCRYPTION_SECRET_PREVIOUS holds the old secret; afterwards
                               the old secret can be dropped.

With DATABASE_URL the command changes the database directly under the key advisory lock and
notifies running servers (LISTEN/NOTIFY), which reload their keys at once. In embedded mode
(no DATABASE_URL) the store belongs to the running server: the command goes through its local
admin socket (DATA_DIR/admin.sock, ADMIN_SOCKET) and the server makes the change, audited as the
admin local-socket; with the socket off it refuses (stop the server, or use /admin/keys…).`;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'list, rotate, revoke or re-activate signing keys; re-encrypt them under a new secret',
  help: HELP,
  async run(args) {
    const [sub, ...rest] = args;
    const options = parseOptions(rest);
    if (options.json && sub !== 'list') throw new UsageError('--json goes with list');
    switch (sub) {
      case 'list':
        expectArguments(sub, options.positional, 0);
        return withKeys('list', async (api) => {
          const rows = (await viaServer.keysList(api)).keys;
          if (options.json) printJson(rows);
          else process.stdout.write(formatKeys(rows.map(keyRowOf)));
          return 0;
        }, async ({ keys }) => {
          const rows = await keys.list();
          if (options.json) printJson(rows.map(describeSigningKey));
          else process.stdout.write(formatKeys(rows));
          return 0;
        });
      case 'rotate': {
        expectArguments(sub, options.positional, 0);
        const alg = options.flags.alg;
        if (alg !== undefined && !(SIGNING_ALGS as readonly string[]).includes(alg)) {
          throw new UsageError(`--alg must be one of ${SIGNING_ALGS.join(', ')} (got "${alg}")`);
        }
        return withKeys('rotate', async (api) => print((await viaServer.keysRotate(api, alg)).transitions), async ({ keys }) => {
          const applied = await keys.rotate(alg as SigningAlg | undefined, cliActor());
          return print(applied.map(describeTransition));
        });
      }
      case 'revoke': {
        expectArguments(sub, options.positional, 1);
        const kid = options.positional[0]!;
        return withKeys('revoke', async (api) => print((await viaServer.keysRevoke(api, kid, options.flags.reason ?? 'revoked with latchkey keys revoke')).transitions), async ({ keys }) => {
          const applied = await keys.revoke(kid, options.flags.reason ?? null, cliActor());
          return print(applied.map(describeTransition));
        });
      }
      case 'reactivate': {
        expectArguments(sub, options.positional, 1);
        const kid = options.positional[0]!;
        return withKeys('reactivate', async (api) => print((await viaServer.keysReactivate(api, kid)).transitions), async ({ keys }) => {
          const applied = await keys.reactivate(kid, cliActor());
          return print(applied.map(describeTransition));
        });
      }
      case 're-encrypt':
        expectArguments(sub, options.positional, 0);
        return withKeys('re-encrypt', async (api) => {
          for (const c of (await viaServer.keysReEncrypt(api)).tables) printReEncrypted(c.table, c.re_encrypted, c.from_previous);
          return 0;
        }, async ({ keys }) => {
          for (const c of await keys.reEncrypt(cliActor())) printReEncrypted(c.table, c.reEncrypted, c.fromPrevious);
          return 0;
        });
      default:
        throw new UsageError(sub
          ? `unknown subcommand "${sub}" (list, rotate, revoke, reactivate or re-encrypt; see --help)`
          : 'missing subcommand: list, rotate, revoke, reactivate or re-encrypt (see --help)');
    }
  },
};

function parseOptions(args: string[]): { positional: string[]; flags: Record<string, string>; json: boolean } {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--json') {
      json = true;
      continue;
    }
    const m = /^--(alg|reason)(?:=(.*))?$/.exec(arg);
    if (m) {
      const value = m[2] ?? args[++i];
      if (value === undefined || value === '') throw new UsageError(`--${m[1]} needs a value`);
      flags[m[1]!] = value;
    } else if (arg.startsWith('--')) {
      throw new UsageError(`unknown option ${arg} (see --help)`);
    } else {
      positional.push(arg);
    }
  }
  return { positional, flags, json };
}

function expectArguments(sub: string, positional: string[], count: number): void {
  if (positional.length === count) return;
  throw new UsageError(count === 0 ? `${sub} takes no argument (got "${positional.join(' ')}")` : `${sub} needs exactly one KID (see --help)`);
}

interface KeysSession {
  keys: KeyAdministration;
}

/** Who acted, for the audit trail. */
const cliActor = () => ({ by: 'cli', user: process.env.USER });

const printReEncrypted = (table: string, n: number, fromPrevious: number) =>
  process.stdout.write(`re-encrypted ${n} ${table} row(s) under KEY_ENCRYPTION_SECRET (${fromPrevious} were under KEY_ENCRYPTION_SECRET_PREVIOUS)\n`);

const print = (transitions: Record<string, unknown>[]) => {
  process.stdout.write(describe(transitions));
  return 0;
};

/** A key of the admin API's listing (ISO timestamps) as formatKeys takes it. */
const keyRowOf = (k: Record<string, unknown>) => {
  const at = (v: unknown) => (typeof v === 'string' ? new Date(v) : null);
  return {
    kid: String(k.kid), alg: String(k.alg), state: String(k.state), created_at: at(k.created_at)!, activated_at: at(k.activated_at),
    retired_at: at(k.retired_at), removed_at: at(k.removed_at), revoked_at: at(k.revoked_at), revoked_reason: (k.revoked_reason as string | null) ?? null,
  };
};

/**
 * Opens the store like the server does (same secret, same migrations), runs `fn`, closes it.
 * In embedded mode with a server running, `remote` runs the command through its admin socket.
 */
async function withKeys(sub: string, remote: (api: AdminSocketClient) => Promise<number>, fn: (session: KeysSession) => Promise<number>): Promise<number> {
  const config = configOrExit();
  const api = await runningServer(config);
  if (api) return remote(api);
  let release: (() => void) | undefined;
  if (!config.databaseUrl) {
    try {
      release = lockDataDir(config.dataDir);
    } catch (err) {
      if (err instanceof DataDirBusyError) {
        throw new UsageError(`cannot ${sub} keys: the embedded store in ${err.dir} is in use by a running Latchkey server (pid ${err.pid}). ` +
          'Embedded PGlite is single-process: stop the server, run this command, start it again. ' +
          '(With DATABASE_URL this command works beside running servers, which reload at once.)');
      }
      throw err;
    }
  }
  try {
    const secret = keyEncryptionSecrets(config);
    const store = await openStore({ databaseUrl: config.databaseUrl, schema: config.databaseSchema, dataDir: config.dataDir, poolMax: 2 });
    try {
      await migrate(store.db, migrations);
      const logger = createLogger(config.logLevel, process.stderr);
      // Key changes made here are audited like the server's, into the same table.
      const auditEvents = new AuditEventRepository(store.db);
      const audit = createAuditLog(logger, { clock: systemClock, sink: (events) => auditEvents.insertMany(events) });
      const manager = new KeyManager({ config, store, secret, clock: systemClock, logger, audit });
      const keys = new KeyAdministration(manager, audit);
      // The TOTP secrets are sealed under the same secret (the issuer label plays no part here).
      keys.addSealedTable(new TotpFactors(store.db, secret, ''));
      try {
        if (sub !== 'list') await manager.load(); // a wrong secret stops here, before any change
        return await fn({ keys });
      } finally {
        await audit.close();
      }
    } catch (err) {
      if (err instanceof KeyLifecycleError) throw new UsageError(err.message);
      throw err;
    } finally {
      await store.close();
    }
  } finally {
    release?.();
  }
}

/** The secret the signing keys are encrypted under: configured, or the embedded store's generated one. */
export function keyEncryptionSecret(config: Config): string {
  if (config.keyEncryptionSecret) return config.keyEncryptionSecret;
  return embeddedKeyEncryptionSecret(config.dataDir).secret;
}

/** That secret and, while it is being changed, KEY_ENCRYPTION_SECRET_PREVIOUS (which still decrypts). */
export function keyEncryptionSecrets(config: Config): KeyEncryptionSecrets {
  return { current: keyEncryptionSecret(config), previous: config.keyEncryptionSecretPrevious };
}

const iso = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

export function formatKeys(rows: Array<{ kid: string; alg: string; state: string; created_at: Date; activated_at: Date | null; retired_at: Date | null; removed_at: Date | null; revoked_at: Date | null; revoked_reason: string | null }>): string {
  if (rows.length === 0) return 'no signing keys yet (the server creates them on its first start)\n';
  const header = ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATED', 'RETIRED', 'REMOVED/REVOKED'];
  const lines = rows.map((r) => [
    r.kid, r.alg, r.state, iso(r.created_at), iso(r.activated_at), iso(r.retired_at),
    r.revoked_at ? `${iso(r.revoked_at)}${r.revoked_reason ? ` (${r.revoked_reason})` : ''}` : iso(r.removed_at),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}


/** Applied transitions as describeTransition (and the admin API) report them, one line each. */
function describe(transitions: Record<string, unknown>[]): string {
  return transitions.map((t) => {
    const key = `${String(t.alg)} key ${String(t.kid)}`;
    switch (t.action) {
      case 'created': return `created ${key} (${String(t.state)})`;
      case 'retired': return `retired ${key} (published until the tokens it signed expire)`;
      case 'activated': return `activated ${key}${t.early ? ' (warning: published for less than KEY_PUBLISH_AHEAD; verifiers with an older cached JWKS reject its tokens until they refetch)' : ''}`;
      case 'removed': return `removed ${key}`;
      case 'reactivated': return `re-activated ${key} (it signs again)`;
      case 'revoked': return `revoked ${key} (unpublished; tokens it signed no longer verify)`;
      default: return `${String(t.action)} ${key}`;
    }
  }).join('\n') + '\n';
}
