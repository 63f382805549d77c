import { readDeclarationsFile } from '../../platform/config/declarations-file.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import type { ClientRepository } from './store.js';
import { CLIENT_ID, hashSecret } from '../client.js';
import { parseClientMetadata, usesClientSecret, type ClientMetadata, type ClientMetadataRules } from '../client-metadata.js';
import { OAuthError } from '../errors.js';

/**
 * The declarative clients file (CLIENTS_FILE): JSON or YAML, `{ clients: [ … ] }` (or just the
 * list), each entry RFC 7591 metadata plus `client_id` and, for client_secret_* methods,
 * `client_secret_env` naming the environment variable that holds the secret. Upserted at
 * start-up: created when missing, replaced when different, untouched when equal (idempotent).
 * Clients not in the file are left alone.
 */
export class ClientsFileError extends Error {
  constructor(path: string, message: string) {
    super(`CLIENTS_FILE ${path}: ${message}`);
    this.name = 'ClientsFileError';
  }
}

/** A secret from the environment must be at least this long (the server's own are 43 characters). */
export const MIN_ENV_SECRET_LENGTH = 32;

export interface DeclaredClient {
  clientId: string;
  metadata: ClientMetadata;
  secretHash: string | null;
}

/** The client_id each entry names, where it names a possible one. */
function declaredIds(entries: readonly unknown[]): string[] {
  return entries.flatMap((entry) => {
    const id = entry !== null && typeof entry === 'object' ? (entry as { client_id?: unknown }).client_id : undefined;
    return typeof id === 'string' && CLIENT_ID.test(id) ? [id] : [];
  });
}

/**
 * Validates every entry first: nothing is written unless every client is valid.
 * `registeredRedirectUris`: the redirect URIs each declared client already has in the database,
 * kept as they are (parseClientMetadata).
 */
function validateEntries(
  path: string, list: readonly unknown[], env: Record<string, string | undefined>, rules: ClientMetadataRules,
  registeredRedirectUris?: ReadonlyMap<string, readonly string[]>,
): DeclaredClient[] {
  const seen = new Set<string>();
  return list.map((entry, index) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new ClientsFileError(path, `entry ${index + 1} is not an object`);
    const { client_id: clientId, client_secret_env: secretEnv, ...rest } = entry as Record<string, unknown>;
    if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) {
      throw new ClientsFileError(path, `entry ${index + 1}: client_id: must be 1-200 characters of A-Z a-z 0-9 . _ ~ -`);
    }
    const where = `client "${clientId}"`;
    if (seen.has(clientId)) throw new ClientsFileError(path, `${where} is declared twice`);
    seen.add(clientId);
    if ('client_secret' in rest) throw new ClientsFileError(path, `${where}: client_secret: secrets do not belong in the file; name an environment variable with client_secret_env`);
    let metadata: ClientMetadata;
    try {
      metadata = parseClientMetadata(rest, { ...rules, registeredRedirectUris: registeredRedirectUris?.get(clientId) ?? [] });
    } catch (err) {
      if (err instanceof OAuthError) throw new ClientsFileError(path, `${where}: ${err.description}`);
      throw err;
    }
    let secretHash: string | null = null;
    if (usesClientSecret(metadata.token_endpoint_auth_method)) {
      if (typeof secretEnv !== 'string' || !secretEnv) {
        throw new ClientsFileError(path, `${where}: client_secret_env: required for ${metadata.token_endpoint_auth_method} (the environment variable holding the secret)`);
      }
      const secret = env[secretEnv];
      if (!secret) throw new ClientsFileError(path, `${where}: client_secret_env: environment variable ${secretEnv} is not set`);
      if (secret.length < MIN_ENV_SECRET_LENGTH) {
        throw new ClientsFileError(path, `${where}: client_secret_env: the secret in ${secretEnv} must be at least ${MIN_ENV_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`)`);
      }
      secretHash = hashSecret(secret);
    } else if (secretEnv !== undefined) {
      throw new ClientsFileError(path, `${where}: client_secret_env: not used with ${metadata.token_endpoint_auth_method}`);
    }
    return { clientId, metadata, secretHash };
  });
}

/** Upserts every client of the file; returns what happened to each. */
export async function applyClientsFile(
  path: string,
  env: Record<string, string | undefined>,
  repository: ClientRepository,
  audit: AuditLog,
  rules: ClientMetadataRules,
): Promise<Record<string, 'created' | 'updated' | 'unchanged'>> {
  const entries = readDeclarationsFile(path, 'clients', (message) => new ClientsFileError(path, message));
  // A client declared before a redirect URI rule became stricter keeps the URIs it has.
  const registeredRedirectUris = await repository.registeredRedirectUris(declaredIds(entries));
  const declared = validateEntries(path, entries, env, rules, registeredRedirectUris);
  const outcome: Record<string, 'created' | 'updated' | 'unchanged'> = {};
  for (const client of declared) {
    const result = await repository.upsertDeclared({ ...client, source: 'bootstrap' });
    outcome[client.clientId] = result;
    if (result !== 'unchanged') audit.record(result === 'created' ? 'client.created' : 'client.updated', { client_id: client.clientId, source: 'bootstrap' });
  }
  return outcome;
}
