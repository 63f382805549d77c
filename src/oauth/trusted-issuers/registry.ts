import type { z } from 'zod';
import { readDeclarationsFile } from '../../platform/config/declarations-file.js';
import type { AuditFields, AuditLog } from '../../platform/observability/audit.js';
import type { OutboundPolicy } from '../../platform/outbound/policy.js';
import { InvalidRequest, NotFound } from '../errors.js';
import { trustedIssuerSchema, type TrustedIssuerConfig } from './issuer-config.js';
import type { StoredTrustedIssuer, TrustedIssuerRepository, TrustedIssuerWrite } from './store.js';

/** Who made a change (audit fields): `by` (admin_api, cli, bootstrap) and e.g. admin_credential. */
export type IssuerActor = AuditFields & { by: string };

/** A trusted issuer as the admin API and CLI show it. */
export interface DescribedTrustedIssuer extends TrustedIssuerConfig {
  created_at: string;
  updated_at: string;
}

export const describeTrustedIssuer = (stored: StoredTrustedIssuer): DescribedTrustedIssuer => ({
  ...stored.config, created_at: stored.createdAt.toISOString(), updated_at: stored.updatedAt.toISOString(),
});

/**
 * The one way to change trusted issuers (admin API, CLI, TRUSTED_ISSUERS_FILE): validates with
 * trustedIssuerSchema plus the outbound policy (a jwks_uri the server may fetch), writes through
 * the repository (which announces the change) and audits `trusted_issuer.*` with who did it.
 */
export class TrustedIssuerRegistry {
  constructor(
    private readonly repository: TrustedIssuerRepository,
    private readonly audit: AuditLog,
    private readonly outbound: Pick<OutboundPolicy, 'targetProblem'>,
    /** This server's own issuer (ISSUER), which can never be an external one. */
    private readonly ownIssuer: string,
  ) {}

  /**
   * A declaration validated, or InvalidRequest naming the first problem. The timestamps of a
   * shown issuer are state, not declaration: dropped, so `show` output can be edited and sent back.
   */
  validate(input: unknown): TrustedIssuerConfig {
    const parsed = trustedIssuerSchema.safeParse(withoutState(input));
    if (!parsed.success) throw new InvalidRequest(issueText(parsed.error));
    const config = parsed.data;
    // Latchkey's own ID tokens, logout tokens and introspection responses must never pass for
    // an external issuer's identity tokens (RFC 8725 §3.12: cross-JWT confusion).
    if (config.issuer === this.ownIssuer) throw new InvalidRequest('issuer: this server\'s own issuer cannot be a trusted external issuer');
    if (config.jwks_uri !== undefined) {
      const problem = this.outbound.targetProblem(config.jwks_uri);
      if (problem !== undefined) throw new InvalidRequest(`jwks_uri: ${problem}`);
    }
    return config;
  }

  async list(): Promise<StoredTrustedIssuer[]> {
    return this.repository.list();
  }

  async get(name: string): Promise<StoredTrustedIssuer> {
    const stored = await this.repository.find(name);
    if (!stored) throw new NotFound('no such trusted issuer');
    return stored;
  }

  async create(input: unknown, actor: IssuerActor): Promise<StoredTrustedIssuer> {
    const config = this.validate(input);
    const stored = written(await this.repository.insert(config));
    this.record('trusted_issuer.created', config, actor);
    return stored;
  }

  /** Replaces `name`'s declaration with `input` (whose name, if given, must be `name`). */
  async update(name: string, input: unknown, actor: IssuerActor): Promise<StoredTrustedIssuer> {
    const body = input !== null && typeof input === 'object' && !Array.isArray(input) ? input as Record<string, unknown> : undefined;
    if (!body) throw new InvalidRequest('the body must be a JSON object');
    if (body.name !== undefined && body.name !== name) throw new InvalidRequest('name cannot be changed (delete and create instead)');
    const config = this.validate({ ...body, name });
    const stored = written(await this.repository.update(config));
    this.record('trusted_issuer.updated', config, actor);
    return stored;
  }

  async delete(name: string, actor: IssuerActor): Promise<void> {
    const deleted = await this.repository.delete(name);
    if (!deleted) throw new NotFound('no such trusted issuer');
    this.record('trusted_issuer.deleted', deleted.config, actor);
  }

  async setDisabled(name: string, disabled: boolean, actor: IssuerActor): Promise<StoredTrustedIssuer> {
    const current = await this.get(name);
    if (current.config.disabled === disabled) return current;
    const stored = written(await this.repository.update({ ...current.config, disabled }));
    this.record(disabled ? 'trusted_issuer.disabled' : 'trusted_issuer.enabled', stored.config, actor);
    return stored;
  }

  /**
   * Upserts every issuer of the file (TRUSTED_ISSUERS_FILE): all validated before anything is
   * written; an equal one is left alone (idempotent); issuers not in the file are left alone.
   * Returns how many were created and updated.
   */
  async applyFile(path: string, actor: IssuerActor): Promise<{ created: number; updated: number }> {
    const configs = readDeclarationsFile(path, 'issuers', (message) => new TrustedIssuersFileError(path, message)).map((entry, i) => {
      try {
        return this.validate(entry);
      } catch (err) {
        throw new TrustedIssuersFileError(path, `issuers[${i}]: ${(err as Error).message}`);
      }
    });
    const names = configs.map((c) => c.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new TrustedIssuersFileError(path, `the name ${twice} is declared twice`);
    const issuers = configs.map((c) => c.issuer);
    const sameIssuer = issuers.find((n, i) => issuers.indexOf(n) !== i);
    if (sameIssuer) throw new TrustedIssuersFileError(path, `the issuer ${sameIssuer} is declared twice`);
    let created = 0, updated = 0;
    for (const config of configs) {
      const current = await this.repository.find(config.name);
      if (!current) {
        const result = await this.repository.insert(config);
        if (!result.ok) throw new TrustedIssuersFileError(path, `${config.name}: its issuer is already another trusted issuer's`);
        this.record('trusted_issuer.created', config, actor);
        created++;
      } else if (JSON.stringify(current.config) !== JSON.stringify(config)) {
        const result = await this.repository.update(config);
        if (!result.ok) throw new TrustedIssuersFileError(path, `${config.name}: its issuer is already another trusted issuer's`);
        this.record('trusted_issuer.updated', config, actor);
        updated++;
      }
    }
    return { created, updated };
  }

  private record(event: string, config: TrustedIssuerConfig, actor: IssuerActor): void {
    this.audit.record(event, { ...actor, name: config.name, issuer: config.issuer });
  }
}

const STATE = ['created_at', 'updated_at'];

function withoutState(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  return Object.fromEntries(Object.entries(input).filter(([k]) => !STATE.includes(k)));
}

function written(result: TrustedIssuerWrite): StoredTrustedIssuer {
  if (result.ok) return result.stored;
  if (result.conflict === 'missing') throw new NotFound('no such trusted issuer');
  throw new InvalidRequest(result.conflict === 'name' ? 'a trusted issuer of that name exists' : 'that issuer is already another trusted issuer\'s');
}

function issueText(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path.join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

export class TrustedIssuersFileError extends Error {
  constructor(path: string, message: string) {
    super(`TRUSTED_ISSUERS_FILE ${path}: ${message}`);
    this.name = 'TrustedIssuersFileError';
  }
}
