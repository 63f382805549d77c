import type { ClaimSource } from '../../src/oauth/claims.js';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Client, ClientSecretSlot } from '../../src/oauth/client.js';
import { hashSecret } from '../../src/oauth/client.js';
import { clientTypeOf } from '../../src/oauth/client-metadata.js';
import { ClientKeys } from '../../src/oauth/client-auth/client-keys.js';
import { systemClock } from '../../src/platform/clock.js';
import { parseClientMetadata } from './clients.js';
import type { Notifier } from '../../src/platform/db/database.js';
import type { KeyRing, SigningAlg, SigningKey, VerificationKey } from '../../src/platform/keys/keyring.js';

/**
 * In-memory ports for unit tests of the protocol kernel (src/oauth, the kernel-style modules of
 * src/capabilities): no database, no Fastify, no HTTP.
 */

function keyPair(alg: SigningAlg): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (alg) {
    case 'ES256': return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'EdDSA': return generateKeyPairSync('ed25519');
    case 'RS256':
    case 'PS256': return generateKeyPairSync('rsa', { modulusLength: 2048 });
  }
}

/**
 * A key ring of one active key per algorithm given (the first is the default), kids `k-<alg>`.
 * `revoke(kid)` makes a key unknown at once, as a key revocation does.
 */
export class MemoryKeyRing implements KeyRing {
  readonly defaultAlg: SigningAlg;
  private readonly keys = new Map<string, { alg: SigningAlg; privateKey: KeyObject; publicKey: KeyObject }>();
  private readonly revoked = new Set<string>();

  constructor(algs: readonly SigningAlg[] = ['ES256']) {
    this.defaultAlg = algs[0]!;
    for (const alg of algs) this.keys.set(MemoryKeyRing.kidOf(alg), { alg, ...keyPair(alg) });
  }

  static kidOf(alg: SigningAlg): string {
    return `k-${alg}`;
  }

  algorithms(): SigningAlg[] {
    return [...this.keys].filter(([kid]) => !this.revoked.has(kid)).map(([, k]) => k.alg);
  }

  signingKey(alg: SigningAlg = this.defaultAlg): SigningKey {
    const kid = MemoryKeyRing.kidOf(alg);
    const key = this.keys.get(kid);
    if (!key || this.revoked.has(kid)) throw new Error(`no active ${alg} key`);
    return { kid, alg, privateKey: key.privateKey };
  }

  verificationKey(kid: string): VerificationKey | undefined {
    const key = this.keys.get(kid);
    return key && !this.revoked.has(kid) ? { kid, alg: key.alg, publicKey: key.publicKey } : undefined;
  }

  /** The public key of `alg` (to verify with jose, as a resource server would). */
  publicKey(alg: SigningAlg = this.defaultAlg): KeyObject {
    return this.keys.get(MemoryKeyRing.kidOf(alg))!.publicKey;
  }

  revoke(kid: string): void {
    this.revoked.add(kid);
  }
}

/** A registered client, its metadata through the real schema (defaults filled in as the registry does). */
export function testClient(clientId: string, metadata: Record<string, unknown> = {}, extra: { secrets?: ClientSecretSlot[]; disabled?: boolean; tokensNotBefore?: Date } = {}): Client {
  const parsed = parseClientMetadata({ redirect_uris: ['https://app.example.com/cb'], ...metadata });
  return {
    clientId, clientType: clientTypeOf(parsed), metadata: parsed,
    secrets: extra.secrets ?? [], disabled: extra.disabled ?? false, source: 'cli',
    createdAt: new Date('2030-01-01T00:00:00Z'), updatedAt: new Date('2030-01-01T00:00:00Z'),
    tokensNotBefore: extra.tokensNotBefore ?? null, lastUsedAt: null,
  };
}

/** Client keys for kernel tests: a client's registered `jwks`; a jwks_uri fetch fails (there is no network here). */
export function localClientKeys(): ClientKeys {
  return new ClientKeys({
    fetcher: { fetch: async () => { throw new Error('no outbound requests in kernel tests'); } },
    clock: systemClock, maxBytes: 128 * 1024, maxKeys: 50, cacheEntries: 100, cacheBytes: 1024 * 1024,
  });
}

/** A secret slot for `secret`, with no expiry unless given. */
export function secretSlot(secret: string, expiresAt: Date | null = null): ClientSecretSlot {
  return { hash: hashSecret(secret), expiresAt };
}

/** A Map-backed client store; `lookups` records each id looked up. */
export class MemoryClients {
  readonly byId = new Map<string, Client>();
  readonly lookups: string[] = [];
  constructor(clients: Client[] = []) {
    for (const c of clients) this.byId.set(c.clientId, c);
  }
  async get(clientId: string): Promise<Client | undefined> {
    this.lookups.push(clientId);
    return this.byId.get(clientId);
  }
}

/** The client-assertion jti store, in memory: a jti is taken until its expiry. */
export class MemoryJtiStore {
  readonly used = new Map<string, Date>();
  async consume(clientId: string, jtiHash: string, expiresAt: Date): Promise<boolean> {
    const key = `${clientId} ${jtiHash}`;
    if (this.used.has(key)) return false;
    this.used.set(key, expiresAt);
    return true;
  }
}

/** A notifier in one process: what was notified, and delivery to the listeners by hand (`deliver`). */
export class MemoryNotifier implements Notifier {
  readonly sent: Array<{ channel: string; payload: string }> = [];
  private readonly listeners = new Map<string, Set<(payload: string) => void>>();

  async listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
    let set = this.listeners.get(channel);
    if (!set) { set = new Set(); this.listeners.set(channel, set); }
    set.add(onMessage);
    return async () => { set.delete(onMessage); };
  }

  async notify(channel: string, payload: string): Promise<void> {
    this.sent.push({ channel, payload });
  }

  /** Delivers a notification to this channel's listeners (as another instance's NOTIFY would arrive). */
  deliver(channel: string, payload: string): void {
    for (const l of this.listeners.get(channel) ?? []) l(payload);
  }

  listenerCount(channel: string): number {
    return this.listeners.get(channel)?.size ?? 0;
  }
}

/** A user with an email and a name (what the ID token's user claims come from), for the grants' user lookups. */
export const person = (id: string, disabled: boolean): ClaimSource & { disabled: boolean } => ({
  id, email: `${id}@example.com`, email_verified: true, phone_number: null, phone_number_verified: false,
  profile: { name: `${id[0]!.toUpperCase()}${id.slice(1)}` }, address: null, updated_at: new Date('2029-06-01T00:00:00Z'), disabled,
});
