import { cliFamilyRevocation } from './tokens.js';
import { GRANT_TYPES } from '../server/capabilities.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { systemClock } from '../platform/clock.js';
import { parseDurationSeconds } from '../platform/config/settings.js';
import { describeClient, ClientRegistry, type CreatedClient } from '../oauth/clients/registry.js';
import { OAuthError } from '../oauth/errors.js';
import { createAuditLog } from '../platform/observability/audit.js';
import { createLogger } from '../platform/observability/logger.js';
import { AuditEventRepository } from '../platform/observability/audit-event-store.js';
import { ClientRepository } from '../oauth/clients/store.js';
import { createOutboundFetcher } from '../platform/outbound/fetcher.js';
import { userInfo } from 'node:os';
import { revokeIssuedTokens } from '../oauth/clients/revoke-issued.js';
import { unusedSinceOf } from '../oauth/clients/usage.js';
import { UsageError, type Command } from './command.js';
import { configOrExit } from './config-errors.js';
import { printJson } from './output.js';
import { withCliStore } from './store.js';
import { runningServer, viaServer } from './admin-socket.js';

const HELP = `Usage: latchkey clients <subcommand> [options]

Manage OAuth clients. Output is JSON on stdout (never a secret's hash). A generated client
secret is printed once (as "client_secret"); only its SHA-256 is stored.

Subcommands:
  create [options]                     register a client (options below)
  list [--json] [--stale DURATION | --unused-since ISO]
                                       every client, as one JSON document (an array); it is JSON
                                       with or without --json, the flag every list command takes.
                                       --stale 90d: only those not used (authenticated at /token,
                                       /introspect, /revoke, /par) for 90 days, never-used ones
                                       counted from their creation; least recently used first
  show <client_id>                     show one client
  update <client_id> [options]         change the given members, keep the others
  rotate-secret <client_id> [--overlap DURATION] [--revoke-issued [--reason TEXT]]
                                       new secret; the old one keeps working for DURATION
                                       (default CLIENT_SECRET_ROTATION_OVERLAP; 0 ends it now).
                                       --revoke-issued (a leaked secret): the old secret ends now
                                       (--overlap must be 0 or left out), and so does every token issued before
                                       now, as revoke-issued does
  revoke-issued <client_id> --reason TEXT
                                       every access token the client was issued before now is
                                       inactive (tokens_not_before; enabling a disabled client
                                       revives none) and its refresh token families are revoked
  disable <client_id> | enable <client_id>
  delete <client_id> --yes

Metadata options (create, update; RFC 7591 names in brackets):
  --client-id ID               the client_id (create only; default: generated)
  --name NAME                  [client_name]
  --grant-type TYPE            [grant_types] repeatable: ${GRANT_TYPES.grantTypes().join(`,\n${' '.repeat(31)}`)}
  --auth-method METHOD         [token_endpoint_auth_method] client_secret_basic (default),
                               client_secret_post, private_key_jwt, none, workload_identity
                               (with --metadata '{"workload_identity":{"issuer":…,"subject":…}}')
  --scope "A B"                [scope] the scopes the client may request
  --default-scope "A"          [default_scope] granted when a request names none (default: all of --scope)
  --resource URI               [resources] repeatable: allowed audiences; the first is the default
  --redirect-uri URI           [redirect_uris] repeatable
  --post-logout-redirect-uri URI  [post_logout_redirect_uris] repeatable
  --backchannel-logout-uri URL [backchannel_logout_uri] told when a session it took part in ends
  --jwks-uri URL               [jwks_uri] for private_key_jwt
  --jwks-file PATH             [jwks] a JSON Web Key Set file of public keys, for private_key_jwt
  --access-token-ttl SECONDS   [access_token_ttl]
  --refresh-token-idle-ttl SECONDS      [refresh_token_idle_ttl]
  --refresh-token-absolute-ttl SECONDS  [refresh_token_absolute_ttl]
  --skip-consent               [skip_consent] a first-party client
  --introspect-any-token       [introspect_any_token] a resource server: /introspect tells it
                               about any token, not only its own and those naming it in aud
  --id-token-scope-claims      [id_token_scope_claims] ID tokens carry the granted scopes' claims
  --require-pkce true|false    [require_pkce] false: a confidential client may leave PKCE out of
                               an OpenID Connect request that sends a nonce (RFC 9700 §2.1.1;
                               for libraries without PKCE); default true
  --rate-limit ENDPOINT=N      [rate_limits] repeatable: this client's own limit per RATE_LIMIT_WINDOW
                               at token, introspection, revocation or par, instead of the
                               server's *_RATE_LIMIT_PER_CLIENT (administrators only)
  --metadata JSON              any metadata as a JSON object (merged under the options above)

Embedded store: while a server owns DATA_DIR the command goes through its local admin socket
(DATA_DIR/admin.sock, ADMIN_SOCKET): the server acts, audited as the admin local-socket (with
the socket off it refuses).
With DATABASE_URL the command writes to PostgreSQL and running servers pick the change up at
once (LISTEN/NOTIFY).`;

const OPTIONS = {
  'client-id': { type: 'string' },
  name: { type: 'string' },
  'grant-type': { type: 'string', multiple: true },
  'auth-method': { type: 'string' },
  scope: { type: 'string' },
  'default-scope': { type: 'string' },
  resource: { type: 'string', multiple: true },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'backchannel-logout-uri': { type: 'string' },
  'jwks-uri': { type: 'string' },
  'jwks-file': { type: 'string' },
  'access-token-ttl': { type: 'string' },
  'refresh-token-idle-ttl': { type: 'string' },
  'refresh-token-absolute-ttl': { type: 'string' },
  'skip-consent': { type: 'boolean' },
  'introspect-any-token': { type: 'boolean' },
  'id-token-scope-claims': { type: 'boolean' },
  'require-pkce': { type: 'string' },
  metadata: { type: 'string' },
  overlap: { type: 'string' },
  'revoke-issued': { type: 'boolean' },
  reason: { type: 'string' },
  stale: { type: 'string' },
  'unused-since': { type: 'string' },
  'rate-limit': { type: 'string', multiple: true },
  yes: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** The metadata the options describe (only the members given). */
function metadataFrom(v: Values): Record<string, unknown> {
  let base: Record<string, unknown> = {};
  if (v.metadata) {
    try { base = JSON.parse(v.metadata) as Record<string, unknown>; } catch { throw new UsageError('--metadata must be a JSON object'); }
    if (base === null || typeof base !== 'object' || Array.isArray(base)) throw new UsageError('--metadata must be a JSON object');
  }
  const m: Record<string, unknown> = { ...base };
  if (v.name !== undefined) m.client_name = v.name;
  if (v['grant-type']) m.grant_types = v['grant-type'];
  if (v['auth-method'] !== undefined) m.token_endpoint_auth_method = v['auth-method'];
  if (v.scope !== undefined) m.scope = v.scope;
  if (v['default-scope'] !== undefined) m.default_scope = v['default-scope'];
  if (v.resource) m.resources = v.resource;
  if (v['redirect-uri']) m.redirect_uris = v['redirect-uri'];
  if (v['post-logout-redirect-uri']) m.post_logout_redirect_uris = v['post-logout-redirect-uri'];
  if (v['backchannel-logout-uri'] !== undefined) m.backchannel_logout_uri = v['backchannel-logout-uri'];
  if (v['jwks-uri'] !== undefined) m.jwks_uri = v['jwks-uri'];
  if (v['jwks-file'] !== undefined) {
    try { m.jwks = JSON.parse(readFileSync(v['jwks-file'], 'utf8')); } catch (err) { throw new UsageError(`--jwks-file: ${(err as Error).message}`); }
  }
  if (v['access-token-ttl'] !== undefined) m.access_token_ttl = Number(v['access-token-ttl']);
  if (v['refresh-token-idle-ttl'] !== undefined) m.refresh_token_idle_ttl = Number(v['refresh-token-idle-ttl']);
  if (v['refresh-token-absolute-ttl'] !== undefined) m.refresh_token_absolute_ttl = Number(v['refresh-token-absolute-ttl']);
  if (v['skip-consent']) m.skip_consent = true;
  if (v['introspect-any-token']) m.introspect_any_token = true;
  if (v['id-token-scope-claims']) m.id_token_scope_claims = true;
  if (v['require-pkce'] !== undefined) {
    if (v['require-pkce'] !== 'true' && v['require-pkce'] !== 'false') throw new UsageError('--require-pkce must be true or false');
    m.require_pkce = v['require-pkce'] === 'true';
  }
  if (v['rate-limit']) {
    const limits: Record<string, number> = { ...(m.rate_limits as Record<string, number> | undefined) };
    for (const entry of v['rate-limit']) {
      const match = /^([a-z]+)=(\d+)$/.exec(entry);
      if (!match) throw new UsageError('--rate-limit must be ENDPOINT=N, such as token=1000');
      limits[match[1]!] = Number(match[2]);
    }
    m.rate_limits = limits;
  }
  return m;
}

function printCreated(created: CreatedClient, extra: Record<string, unknown> = {}): void {
  printJson({ ...describeClient(created.client), ...(created.clientSecret ? { client_secret: created.clientSecret } : {}), ...extra });
  if (created.clientSecret) process.stderr.write('The client_secret above is shown once; store it now.\n');
}

export const clientsCommand: Command = {
  name: 'clients',
  summary: 'create, list, show, update, rotate-secret, revoke-issued, disable, delete clients',
  help: HELP,
  async run(args) {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${HELP}`);
    }
    const { values, positionals } = parsed;
    const [sub, clientId, ...extra] = positionals;
    const subcommands = ['create', 'list', 'show', 'update', 'rotate-secret', 'revoke-issued', 'disable', 'enable', 'delete'];
    if (!sub || !subcommands.includes(sub)) throw new UsageError(`expected a subcommand: ${subcommands.join(', ')}\n\n${HELP}`);
    const needsId = !['create', 'list'].includes(sub);
    if (needsId && !clientId) throw new UsageError(`${sub} needs a client_id`);
    if ((!needsId && clientId !== undefined) || extra.length > 0) throw new UsageError(`unexpected argument: ${needsId ? extra[0] : clientId}`);
    if (values.json && sub !== 'list') throw new UsageError('--json goes with list (the other subcommands print JSON as they are)');
    if (sub === 'delete' && !values.yes) throw new UsageError('delete removes the client for good: add --yes to confirm');
    if ((values.stale !== undefined || values['unused-since'] !== undefined) && sub !== 'list') throw new UsageError('--stale and --unused-since go with list');
    if (values['revoke-issued'] && sub !== 'rotate-secret') throw new UsageError('--revoke-issued goes with rotate-secret (or use the revoke-issued subcommand)');
    if (values.reason !== undefined && sub !== 'revoke-issued' && !(sub === 'rotate-secret' && values['revoke-issued'])) throw new UsageError('--reason goes with revoke-issued, or rotate-secret --revoke-issued');
    const reason = values.reason?.trim();
    if (values.reason !== undefined && (!reason || reason.length > 500)) throw new UsageError('--reason must be 1 to 500 characters');
    if (sub === 'revoke-issued' && !reason) throw new UsageError('revoke-issued needs --reason TEXT: the audit trail says why');
    let since: Date | undefined;
    if (values.stale !== undefined || values['unused-since'] !== undefined) {
      const parsed = unusedSinceOf({ unused_for: values.stale, unused_since: values['unused-since'] }, systemClock.now());
      if ('problem' in parsed) throw new UsageError(parsed.problem.replace('unused_for', '--stale').replace('unused_since', '--unused-since'));
      since = parsed.since;
    }
    let overlap: number | undefined;
    if (values.overlap !== undefined) {
      overlap = parseDurationSeconds(values.overlap);
      if (overlap === undefined || overlap > 90 * 86400) throw new UsageError('--overlap must be a duration such as 0, 3600, 12h or 7d (at most 90d)');
      // A leaked secret must not mint tokens after the cutoff (the admin API refuses the pair too).
      if (values['revoke-issued'] && overlap !== 0) throw new UsageError('--revoke-issued ends the old secret at once: --overlap must be 0 or left out');
    }

    const config = configOrExit();
    // Embedded store with a server running: the command goes through its local admin socket.
    const api = await runningServer(config);
    if (api) {
      const created = (doc: Record<string, unknown>) => {
        printJson(doc);
        if (doc.client_secret) process.stderr.write('The client_secret above is shown once; store it now.\n');
      };
      switch (sub) {
        case 'create': created(await viaServer.clientsCreate(api, metadataFrom(values), values['client-id'])); break;
        case 'list': printJson((await viaServer.clientsList(api, since)).clients); break;
        case 'show': printJson(await viaServer.clientsShow(api, clientId!)); break;
        case 'update': created(await viaServer.clientsUpdate(api, clientId!, metadataFrom(values))); break;
        case 'rotate-secret':
          created(await viaServer.clientsRotateSecret(api, clientId!, {
            ...(overlap !== undefined ? { overlap_seconds: overlap } : {}), ...(values['revoke-issued'] ? { revoke_issued: true } : {}), ...(reason !== undefined ? { reason } : {}),
          }));
          break;
        case 'revoke-issued': printJson(await viaServer.clientsRevokeIssued(api, clientId!, reason!)); break;
        case 'disable':
        case 'enable': printJson(await viaServer.clientsSetDisabled(api, clientId!, sub === 'disable')); break;
        case 'delete':
          await viaServer.clientsDelete(api, clientId!);
          process.stdout.write(`deleted ${clientId}\n`);
          break;
      }
      return 0;
    }
    return withCliStore(config, async (store) => {
      // Audit lines go to stderr so that stdout stays JSON; the events also go to audit_events.
      const auditEvents = new AuditEventRepository(store.db);
      const audit = createAuditLog(createLogger(config.logLevel, pino.destination(2)), { clock: systemClock, sink: (events) => auditEvents.insertMany(events) });
      try {
        const registry = new ClientRegistry(new ClientRepository(store.db, store.notifier), audit, systemClock, { grantTypes: GRANT_TYPES, issuer: config.issuer, outbound: createOutboundFetcher(config).policy });
        const options = { source: 'cli' as const, fields: { user: process.env.USER } };
        const actor = { by: `cli:${userInfo().username}` };
        const revokeDeps = () => ({ registry, families: cliFamilyRevocation(store, audit), audit });
        switch (sub) {
          case 'create':
            printCreated(await registry.create(metadataFrom(values), { ...options, ...(values['client-id'] ? { clientId: values['client-id'] } : {}) }));
            break;
          case 'list':
            printJson((since !== undefined ? await registry.unusedSince(since) : await registry.list()).map(describeClient));
            break;
          case 'show':
            printJson(describeClient(await registry.get(clientId!)));
            break;
          case 'update':
            printCreated(await registry.update(clientId!, metadataFrom(values), { ...options, merge: true }));
            break;
          case 'rotate-secret': {
            const revoke = values['revoke-issued'] === true;
            const why = reason ?? (revoke ? 'client secret rotated' : undefined);
            const rotated = await registry.rotateSecret(clientId!, overlap ?? (revoke ? 0 : config.clientSecretRotationOverlap), { ...options, fields: { ...options.fields, ...(why !== undefined ? { reason: why } : {}) } });
            if (!revoke) { printCreated(rotated); break; }
            const revoked = await revokeIssuedTokens(revokeDeps(), clientId!, why!, actor);
            printCreated({ ...rotated, client: revoked.client }, { tokens_not_before: revoked.cutoff.toISOString(), families_revoked: revoked.families });
            break;
          }
          case 'revoke-issued': {
            const revoked = await revokeIssuedTokens(revokeDeps(), clientId!, reason!, actor);
            printJson({ client_id: clientId, tokens_not_before: revoked.cutoff.toISOString(), families_revoked: revoked.families });
            break;
          }
          case 'disable':
          case 'enable':
            printJson(describeClient(await registry.setDisabled(clientId!, sub === 'disable', options)));
            break;
          case 'delete':
            await registry.delete(clientId!, options);
            process.stdout.write(`deleted ${clientId}\n`);
            break;
        }
        return 0;
      } catch (err) {
        if (err instanceof OAuthError && err.status < 500) throw new UsageError(`${err.error}: ${err.description}`);
        throw err;
      } finally {
        await audit.close();
      }
    });
  },
};
