import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OAuthError } from '../oauth/errors.js';
import { describeTrustedIssuer, TrustedIssuerRegistry } from '../oauth/trusted-issuers/registry.js';
import { TrustedIssuerRepository } from '../oauth/trusted-issuers/store.js';
import { createOutboundFetcher } from '../platform/outbound/fetcher.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { printJson } from './output.js';
import { runningServer, viaServer } from './admin-socket.js';
import { withCliAudit, withCliStore } from './store.js';

const HELP = `Usage: latchkey issuers <subcommand> [options]

Manage trusted external issuers: the identity providers (a Kubernetes API server, a CI
provider's OIDC issuer, a SPIFFE trust domain) whose tokens authenticate workload_identity
clients and serve as JWT bearer grants and token-exchange subject tokens. Output is JSON.

Subcommands:
  list [--json]                every issuer, as one JSON array
  show <name>                  one issuer
  add [--file PATH]            declare an issuer: a JSON object (the file, or stdin)
  update <name> [--file PATH]  replace an issuer's declaration (the file, or stdin; its name stays)
  disable <name>               refuse its tokens until enabled again
  enable <name>
  remove <name> --yes          forget an issuer (its tokens are refused at once)

A declaration: { "name", "issuer", one of "jwks_uri" | "discovery": true | "jwks",
"audiences": [...], "algorithms", "max_token_age", "allow_reuse", "subject_mappings":
[{ "match": { claim: pattern }, "client_id" | "user" }], "disabled" } (README "Trusted issuers").

Embedded store: refuses while a server owns DATA_DIR (stop it, or use the admin API).
With DATABASE_URL running servers pick the change up at once (LISTEN/NOTIFY).`;

const OPTIONS = {
  file: { type: 'string' },
  yes: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** The declaration: the --file's JSON, else stdin's. */
function declaration(file: string | undefined): unknown {
  let text: string;
  try {
    if (file !== undefined) text = readFileSync(file, 'utf8');
    else if (process.stdin.isTTY) throw new UsageError('give the declaration with --file PATH or as JSON on stdin');
    else text = readFileSync(0, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${file ?? 'stdin'}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${file ?? 'stdin'} is not JSON`);
  }
}

export const issuersCommand: Command = {
  name: 'issuers',
  summary: 'list, show, add, update, disable, enable, remove trusted external issuers',
  help: HELP,
  async run(args) {
    let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${HELP}`);
    }
    const { values, positionals } = parsed;
    const [sub, name, ...extra] = positionals;
    const subcommands = ['list', 'show', 'add', 'update', 'disable', 'enable', 'remove'];
    if (!sub || !subcommands.includes(sub)) throw new UsageError(`expected a subcommand: ${subcommands.join(', ')}\n\n${HELP}`);
    const needsName = !['list', 'add'].includes(sub);
    if (needsName && !name) throw new UsageError(`${sub} needs an issuer name`);
    if ((!needsName && name !== undefined) || extra.length > 0) throw new UsageError(`unexpected argument: ${needsName ? extra[0] : name}`);
    if (values.json && sub !== 'list') throw new UsageError('--json goes with list (the other subcommands print JSON as they are)');
    if (values.file !== undefined && sub !== 'add' && sub !== 'update') throw new UsageError('--file goes with add and update');
    if (sub === 'remove' && !values.yes) throw new UsageError('remove forgets the issuer for good: add --yes to confirm');
    const body = sub === 'add' || sub === 'update' ? declaration(values.file) : undefined;

    const config = configOrExit();
    // Embedded store with a server running: the command goes through its local admin socket.
    const api = await runningServer(config);
    if (api) {
      switch (sub) {
        case 'list': printJson(await viaServer.issuersList(api)); break;
        case 'show': printJson(await viaServer.issuersShow(api, name!)); break;
        case 'add': printJson(await viaServer.issuersAdd(api, body)); break;
        case 'update': printJson(await viaServer.issuersUpdate(api, name!, body)); break;
        case 'disable':
        case 'enable': printJson(await viaServer.issuersSetDisabled(api, name!, sub === 'disable')); break;
        case 'remove':
          await viaServer.issuersRemove(api, name!);
          process.stdout.write(`removed ${name}\n`);
          break;
      }
      return 0;
    }
    // Audit lines go to stderr so that stdout stays JSON; the events also go to audit_events.
    return withCliStore(config, (store) => withCliAudit(config, store, async (audit) => {
      try {
        const registry = new TrustedIssuerRegistry(new TrustedIssuerRepository(store.db, store.notifier), audit, createOutboundFetcher(config).policy, config.issuer);
        const actor = { by: 'cli', user: process.env.USER };
        switch (sub) {
          case 'list':
            printJson((await registry.list()).map(describeTrustedIssuer));
            break;
          case 'show':
            printJson(describeTrustedIssuer(await registry.get(name!)));
            break;
          case 'add':
            printJson(describeTrustedIssuer(await registry.create(body, actor)));
            break;
          case 'update':
            printJson(describeTrustedIssuer(await registry.update(name!, body, actor)));
            break;
          case 'disable':
          case 'enable':
            printJson(describeTrustedIssuer(await registry.setDisabled(name!, sub === 'disable', actor)));
            break;
          case 'remove':
            await registry.delete(name!, actor);
            process.stdout.write(`removed ${name}\n`);
            break;
        }
        return 0;
      } catch (err) {
        if (err instanceof OAuthError && err.status < 500) throw new UsageError(`${err.error}: ${err.description}`);
        throw err;
      }
    }));
  },
};
