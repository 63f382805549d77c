import type { CryptoKey, JWK, KeyObject } from 'jose';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Store } from '../db/database.js';
import type { AuditFields, AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeySettings } from './settings.js';
import {
  insertSigningKey, listSigningKeys, resealSigningKey, transitionSigningKey, withSigningKeyLock, type KeysDb, type SigningKeyRow,
} from './signing-key-store.js';
import { KeyEncryption, type KeyEncryptionSecrets, type ReEncryptionCount, type SealedTable } from './encryption.js';
import type { KeyRing, SigningAlg, SigningKey, VerificationKey } from './keyring.js';
import {
  planReactivation, planRevocation, planRotation, planScheduled, type KeyPolicy, type KeyRecord, type RotationTrigger, type Transition,
} from './lifecycle.js';
import { generateSigningKey, importPrivateKey, importPublicKey, publishedJwk } from './material.js';

/** A transition as applied, with the kid it concerned (for `create`, the new key's). */
export type AppliedTransition = Transition & { kid: string };

/** The NOTIFY channel every instance listens on to reload its keys. */
export const KEYS_CHANNEL = 'keys';

/** The key settings it applies, and the longest lifetimes of the tokens a key signs (the tokens slice's). */
type KeyManagerConfig = Pick<KeySettings, 'signingAlgs' | 'keyRotationInterval' | 'keyPublishAhead' | 'keyRetireLeeway' | 'keyCheckInterval'>
  & { accessTokenTtl: number; idTokenTtl: number };

export interface KeyManagerOptions {
  config: KeyManagerConfig;
  store: Store;
  /**
   * KEY_ENCRYPTION_SECRET (configured, or generated in the embedded data directory), and while it
   * is being changed KEY_ENCRYPTION_SECRET_PREVIOUS, which still decrypts keys sealed under it.
   */
  secret: string | KeyEncryptionSecrets;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  /** Where the key metrics are registered; omitted by the CLI. */
  metrics?: Metrics;
}

interface LoadedKey {
  record: KeyRecord;
  publicJwk: Record<string, unknown>;
  publicKey?: CryptoKey | KeyObject;
  /** Only for next and active keys. */
  privateKey?: CryptoKey | KeyObject;
}


const PUBLISHED = new Set(['next', 'active', 'retired']);
const STATE_ORDER: Record<string, number> = { active: 0, next: 1, retired: 2 };

/**
 * Signing keys for the whole server: generates them, stores them encrypted, rotates them on a
 * schedule and on demand, publishes them, and answers the KeyRing questions from memory.
 * Every change is made under the key advisory lock on rows re-read inside it, then announced
 * with NOTIFY; every instance reloads on the notification and on its timer.
 */
export class KeyManager implements KeyRing, SealedTable {
  readonly table = 'signing_keys';
  private keys = new Map<string, LoadedKey>();
  private jwks: string = jwksOf([]);
  private loadChain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private ticking = false;
  private stopped = false;
  private background: Promise<unknown> | undefined;
  private readonly encryption: KeyEncryption;
  private readonly rotations: Counter<'alg' | 'trigger'> | undefined;
  /** The last failed reload (readiness reports it); cleared by the next successful one. */
  lastError: Error | undefined;
  readonly policy: KeyPolicy;

  constructor(private readonly options: KeyManagerOptions) {
    const c = options.config;
    this.encryption = new KeyEncryption(options.secret);
    this.policy = {
      algs: c.signingAlgs,
      rotationIntervalSeconds: c.keyRotationInterval,
      publishAheadSeconds: c.keyPublishAhead,
      // A retired key may still have signed a token just before retirement (or, on an instance
      // that had not reloaded yet, up to one check interval after): it stays published until the
      // longest such token expired, plus leeway for verifiers' clock skew.
      retentionSeconds: Math.max(c.accessTokenTtl, c.idTokenTtl) + c.keyRetireLeeway + c.keyCheckInterval,
    };
    const registry = options.metrics?.registry;
    if (registry) {
      const manager = this;
      new Gauge({
        name: 'latchkey_signing_key_age_seconds',
        help: 'Age of the active signing key (since it started signing), by algorithm.',
        labelNames: ['alg'],
        registers: [registry],
        collect() {
          this.reset();
          const now = manager.options.clock.now().getTime();
          for (const { record } of manager.keys.values()) {
            if (record.state === 'active') this.set({ alg: record.alg }, (now - (record.activatedAt ?? record.createdAt).getTime()) / 1000);
          }
        },
      });
      new Gauge({
        name: 'latchkey_signing_keys',
        help: 'Signing keys by lifecycle state and algorithm; state="active" is exported (0 when none) for every configured algorithm, so an alert on min by (instance, alg) sees a missing key.',
        labelNames: ['state', 'alg'],
        registers: [registry],
        collect() {
          this.reset();
          for (const alg of manager.policy.algs) this.set({ state: 'active', alg }, 0);
          for (const { record } of manager.keys.values()) this.inc({ state: record.state, alg: record.alg });
        },
      });
      this.rotations = new Counter({
        name: 'latchkey_signing_key_rotations_total',
        help: 'Rotations this instance performed (a next key promoted to active; trigger "rollback": a retired key re-activated), by algorithm and trigger.',
        labelNames: ['alg', 'trigger'],
        registers: [registry],
      });
    }
  }

  // ---- KeyRing: answered from memory ----

  get defaultAlg(): SigningAlg {
    return this.algorithms()[0] ?? this.policy.algs[0]!;
  }

  /** Configured algorithms that have an active key, in SIGNING_ALGS order. */
  algorithms(): SigningAlg[] {
    return this.policy.algs.filter((alg) => this.active(alg) !== undefined);
  }

  signingKey(alg: SigningAlg = this.defaultAlg): SigningKey {
    const key = this.active(alg);
    if (!key?.privateKey) throw new Error(`no active signing key for ${alg}`);
    return { kid: key.record.kid, alg, privateKey: key.privateKey };
  }

  verificationKey(kid: string): VerificationKey | undefined {
    const key = this.keys.get(kid);
    if (!key || !PUBLISHED.has(key.record.state) || !key.publicKey) return undefined;
    return { kid, alg: key.record.alg, publicKey: key.publicKey };
  }

  // ---- what the HTTP layer, readiness, discovery and the CLI read ----

  /** Every key as stored now (read from the database, not this instance's memory), oldest first. */
  listStored(): Promise<SigningKeyRow[]> {
    return listSigningKeys(this.options.store.db);
  }

  /** Every key this instance knows of, removed and revoked included (metadata only). */
  records(): KeyRecord[] {
    return [...this.keys.values()].map((k) => k.record);
  }

  /** The JWK Set document (RFC 7517 §5) as served: every published key, public members only. */
  jwksDocument(): string {
    return this.jwks;
  }

  /**
   * Ready when some configured algorithm has an active key (the default then falls back to it)
   * and every configured algorithm has an active key or a next one being published ahead (an
   * algorithm added to SIGNING_ALGS signs only after KEY_PUBLISH_AHEAD; that is no outage).
   */
  readiness(): { ok: boolean; detail?: string } {
    if (this.lastError) return { ok: false, detail: `key reload failed: ${this.lastError.message}` };
    if (this.algorithms().length === 0) return { ok: false, detail: `no active signing key for ${this.policy.algs.join(', ')}` };
    const missing = this.policy.algs.filter((alg) => !this.active(alg) && !this.find(alg, 'next'));
    return missing.length === 0 ? { ok: true } : { ok: false, detail: `no signing key for ${missing.join(', ')}` };
  }

  /** The discovery members the key manager owns (RFC 8414 §2, OpenID Connect Discovery §3). */
  discoveryMetadata(issuer: string): () => Record<string, unknown> {
    return () => ({
      jwks_uri: `${issuer}/jwks`,
      id_token_signing_alg_values_supported: this.algorithms(),
      subject_types_supported: ['public'],
    });
  }

  // ---- lifecycle ----

  /** Loads, performs what is due, then reloads on NOTIFY and every KEY_CHECK_INTERVAL. */
  async start(): Promise<void> {
    await this.tick(); // loads first: a wrong KEY_ENCRYPTION_SECRET throws before anything changes
    this.unlisten = await this.options.store.notifier.listen(KEYS_CHANNEL, () => {
      this.reload('notification');
    });
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.background = this.tick().catch((err: unknown) => {
        this.lastError = err as Error;
        this.options.logger.error({ err }, 'signing key check failed');
      });
    }, this.options.config.keyCheckInterval * 1000);
    this.timer.unref();
  }

  /** Stops the timer and the listener and waits for work in flight, so the store can close after. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.unlisten?.();
    this.unlisten = undefined;
    await this.background;
    await this.loadChain;
  }

  /**
   * Reloads the keys from the database (serialised: a reload never overwrites a newer one).
   * Throws KeyDecryptionError when KEY_ENCRYPTION_SECRET does not decrypt them.
   */
  load(): Promise<void> {
    const run = this.loadChain.then(() => this.loadNow());
    this.loadChain = run.catch(() => {});
    return run;
  }

  /** Reloads, then performs the scheduled transitions that are due (the timer's work). */
  async tick(): Promise<AppliedTransition[]> {
    this.ticking = true;
    try {
      await this.load();
      // Cheap check on what was just loaded; the lock is taken only when something is due.
      if (planScheduled(this.records(), this.policy, this.options.clock.now()).length === 0) return [];
      return await this.transact((records, now) => planScheduled(records, this.policy, now));
    } finally {
      this.ticking = false;
    }
  }

  /** Promotes the next key now (one algorithm or all) and creates a new next. */
  rotate(alg?: SigningAlg, actor: AuditFields = {}): Promise<AppliedTransition[]> {
    return this.transact((records, now) => planRotation(records, this.policy, now, alg), actor);
  }

  /** Unpublishes and distrusts `kid` at once; promotes the next key if it was the active one. */
  revoke(kid: string, reason: string | null = null, actor: AuditFields = {}): Promise<AppliedTransition[]> {
    return this.transact((records, now) => planRevocation(records, this.policy, now, kid, reason), actor);
  }

  /** Rollback: the retired `kid` signs again, the algorithm's active key is retired (still published). */
  reactivate(kid: string, actor: AuditFields = {}): Promise<AppliedTransition[]> {
    return this.transact((records, now) => planReactivation(records, this.policy, now, kid), actor);
  }

  /**
   * Re-seals every stored private key under the current KEY_ENCRYPTION_SECRET, in one transaction
   * under the key lock (so no rotation interleaves). Rows the previous secret sealed are counted;
   * a row neither secret opens aborts the whole transaction (KeyDecryptionError), changing nothing.
   * Every row is re-sealed with a fresh nonce, whichever secret it was under: the count is then
   * the proof that the previous secret decrypts nothing any more.
   */
  async reEncrypt(): Promise<ReEncryptionCount> {
    const count = await withSigningKeyLock(this.options.store.db, async (tx) => {
      let reEncrypted = 0;
      let fromPrevious = 0;
      for (const row of await listSigningKeys(tx)) {
        if (!row.private_key_ciphertext || !row.private_key_nonce) continue;
        const opened = this.encryption.open(row.kid, { ciphertext: row.private_key_ciphertext, nonce: row.private_key_nonce });
        const sealed = this.encryption.encrypt(row.kid, opened.plaintext);
        await resealSigningKey(tx, row.kid, row.private_key_nonce, sealed);
        reEncrypted++;
        if (!opened.current) fromPrevious++;
      }
      return { table: this.table, reEncrypted, fromPrevious };
    });
    return count;
  }

  private reload(why: string): void {
    if (this.stopped) return;
    this.load().catch((err: unknown) => {
      this.lastError = err as Error;
      this.options.logger.error({ err, why }, 'signing key reload failed');
    });
  }

  private active(alg: SigningAlg): LoadedKey | undefined {
    return this.find(alg, 'active');
  }

  private find(alg: SigningAlg, state: string): LoadedKey | undefined {
    for (const key of this.keys.values()) if (key.record.alg === alg && key.record.state === state) return key;
    return undefined;
  }

  private async loadNow(): Promise<void> {
    const rows = await listSigningKeys(this.options.store.db);
    const loaded = new Map<string, LoadedKey>();
    for (const row of rows) {
      const record = recordOf(row);
      const previous = this.keys.get(row.kid);
      const key: LoadedKey = { record, publicJwk: row.public_jwk };
      if (PUBLISHED.has(row.state)) {
        key.publicKey = previous?.publicKey ?? await importPublicKey(row.alg, row.public_jwk);
      }
      if ((row.state === 'active' || row.state === 'next') && row.private_key_ciphertext && row.private_key_nonce) {
        key.privateKey = previous?.privateKey ?? await importPrivateKey(row.alg, this.encryption.decrypt(row.kid, {
          ciphertext: row.private_key_ciphertext, nonce: row.private_key_nonce,
        }));
      }
      loaded.set(row.kid, key);
    }
    this.keys = loaded;
    this.jwks = jwksOf([...loaded.values()]);
    this.lastError = undefined;
  }

  /**
   * One change: under the advisory lock, re-read every key, plan on what is there now, apply
   * it; after the commit announce it (NOTIFY), record audit events and metrics, and reload.
   */
  private async transact(planner: (records: KeyRecord[], now: Date) => Transition[], actor: AuditFields = {}): Promise<AppliedTransition[]> {
    const now = this.options.clock.now();
    const applied = await withSigningKeyLock(this.options.store.db, async (tx) => {
      const records = (await listSigningKeys(tx)).map(recordOf);
      const done: AppliedTransition[] = [];
      for (const transition of planner(records, now)) done.push({ ...transition, kid: await this.apply(tx, transition, now) });
      return done;
    });
    if (applied.length > 0) {
      await this.options.store.notifier.notify(KEYS_CHANNEL, 'changed');
      this.report(applied, actor);
    }
    // Also when nothing was applied: another instance may have made the change first.
    await this.load();
    return applied;
  }

  private async apply(tx: KeysDb, t: Transition, now: Date): Promise<string> {
    switch (t.kind) {
      case 'create': {
        const key = await generateSigningKey(t.alg);
        const encrypted = this.encryption.encrypt(key.kid, key.privateJwkJson);
        await insertSigningKey(tx, {
          kid: key.kid, alg: t.alg, state: t.state, publicJwk: key.publicJwk as Record<string, unknown>,
          ciphertext: encrypted.ciphertext, nonce: encrypted.nonce, at: now,
        });
        return key.kid;
      }
      case 'retire':
        await transitionSigningKey(tx, t.kid, 'active', 'retired', now);
        return t.kid;
      case 'activate':
        await transitionSigningKey(tx, t.kid, 'next', 'active', now);
        return t.kid;
      case 'reactivate':
        await transitionSigningKey(tx, t.kid, 'retired', 'active', now);
        return t.kid;
      case 'remove':
        await transitionSigningKey(tx, t.kid, t.from, 'removed', now);
        return t.kid;
      case 'revoke':
        await transitionSigningKey(tx, t.kid, t.from, 'revoked', now, t.reason);
        return t.kid;
    }
  }

  private report(applied: AppliedTransition[], actor: AuditFields): void {
    const audit = { record: (event: string, fields: AuditFields) => this.options.audit.record(event, { ...actor, ...fields }) };
    const revoking = applied.some((t) => t.kind === 'revoke');
    for (const t of applied) {
      switch (t.kind) {
        case 'create':
          audit.record('key.created', { kid: t.kid, alg: t.alg, state: t.state });
          // An active key created outside the first start replaces a revoked one that had no successor.
          if (t.state === 'active' && revoking) this.rotated(t.kid, t.alg, 'revoke', true, actor);
          break;
        case 'activate':
          this.rotated(t.kid, t.alg, t.trigger, t.early, actor);
          break;
        case 'reactivate':
          // Counted as a rotation (trigger "rollback"): a key other than the last one started signing.
          this.rotations?.inc({ alg: t.alg, trigger: 'rollback' });
          audit.record('key.reactivated', { kid: t.kid, alg: t.alg, replaced: applied.find((r) => r.kind === 'retire' && r.alg === t.alg)?.kid });
          break;
        case 'retire':
          audit.record('key.retired', { kid: t.kid, alg: t.alg });
          break;
        case 'remove':
          audit.record('key.removed', { kid: t.kid, alg: t.alg, previous_state: t.from });
          break;
        case 'revoke':
          audit.record('key.revoked', { kid: t.kid, alg: t.alg, previous_state: t.from, reason: t.reason ?? undefined });
          break;
      }
    }
  }

  private rotated(kid: string, alg: SigningAlg, trigger: RotationTrigger, early: boolean, actor: AuditFields): void {
    this.rotations?.inc({ alg, trigger });
    this.options.audit.record('key.rotated', { ...actor, kid, alg, trigger, early });
    if (early) {
      this.options.logger.warn({ kid, alg, trigger },
        'a signing key was activated before its publish-ahead period ended: verifiers holding an older cached JWKS reject its tokens until they refetch');
    }
  }
}

function recordOf(row: SigningKeyRow): KeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    state: row.state,
    createdAt: row.created_at,
    activatedAt: row.activated_at,
    retiredAt: row.retired_at,
    removedAt: row.removed_at,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
  };
}

/** The JWKS (RFC 7517 §5): every published key, active first, public members only. */
function jwksOf(keys: LoadedKey[]): string {
  const published = keys
    .filter((k) => PUBLISHED.has(k.record.state))
    .sort((a, b) => STATE_ORDER[a.record.state]! - STATE_ORDER[b.record.state]! || a.record.createdAt.getTime() - b.record.createdAt.getTime());
  return JSON.stringify({ keys: published.map((k): JWK => publishedJwk(k.record.kid, k.record.alg, k.publicJwk)) });
}
