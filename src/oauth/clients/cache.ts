import type { Clock } from '../../platform/clock.js';
import type { Notifier } from '../../platform/db/database.js';
import type { Client } from '../client.js';
import { CLIENTS_CHANNEL } from './store.js';

export interface ClientCacheOptions {
  /** Most clients held at once; the least recently used is dropped first. */
  maxEntries: number;
  /** A cached client is re-read after this long even without a notification (a lost NOTIFY cannot keep a deleted client alive). */
  ttlSeconds: number;
  /** Most unknown client_ids remembered (short-lived), so a flood of made-up ids can neither fill memory nor hammer the database. */
  maxNegativeEntries?: number;
  negativeTtlSeconds?: number;
}

interface Entry<T> { value: T; loadedAt: number }

/** The longest client_id looked up at all; anything longer is unknown without a query. */
const MAX_CLIENT_ID_LENGTH = 200;

/**
 * Clients by client_id, from memory: the token endpoint's hot path does no database read.
 * Loaded on demand (concurrent misses share one query), dropped when any instance announces
 * a change on the `clients` channel, and bounded in size and age. Unknown ids are remembered
 * in a separate, small map so they never push real clients out.
 */
export class ClientCache {
  private readonly entries = new Map<string, Entry<Client>>();
  private readonly unknown = new Map<string, number>();
  private readonly loading = new Map<string, Promise<Client | undefined>>();
  /** Bumped by every invalidation: a load that started before one is not cached. */
  private epoch = 0;
  private readonly maxNegative: number;
  private readonly negativeTtlMs: number;

  constructor(
    private readonly load: (clientId: string) => Promise<Client | undefined>,
    private readonly clock: Clock,
    private readonly options: ClientCacheOptions,
  ) {
    this.maxNegative = options.maxNegativeEntries ?? 1000;
    this.negativeTtlMs = (options.negativeTtlSeconds ?? 10) * 1000;
  }

  /** Subscribes to change notifications; returns the unsubscribe function. */
  async listen(notifier: Notifier): Promise<() => Promise<void>> {
    return notifier.listen(CLIENTS_CHANNEL, (clientId) => {
      // An empty payload (or a reconnect) means "anything may have changed".
      if (clientId) this.invalidate(clientId); else this.clear();
    });
  }

  async get(clientId: string): Promise<Client | undefined> {
    if (clientId.length === 0 || clientId.length > MAX_CLIENT_ID_LENGTH) return undefined;
    const now = this.clock.now().getTime();
    const entry = this.entries.get(clientId);
    if (entry && now - entry.loadedAt < this.options.ttlSeconds * 1000) {
      // Least-recently-used order is the Map's insertion order: move this one to the end.
      this.entries.delete(clientId);
      this.entries.set(clientId, entry);
      return entry.value;
    }
    const missedAt = this.unknown.get(clientId);
    if (missedAt !== undefined && now - missedAt < this.negativeTtlMs) return undefined;

    let pending = this.loading.get(clientId);
    if (!pending) {
      const epoch = this.epoch;
      pending = this.load(clientId).then((client) => {
        if (epoch === this.epoch) this.remember(clientId, client, now);
        return client;
      }).finally(() => this.loading.delete(clientId));
      this.loading.set(clientId, pending);
    }
    return pending;
  }

  private remember(clientId: string, client: Client | undefined, now: number): void {
    this.entries.delete(clientId);
    this.unknown.delete(clientId);
    if (client) {
      this.entries.set(clientId, { value: client, loadedAt: now });
      if (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    } else {
      this.unknown.set(clientId, now);
      if (this.unknown.size > this.maxNegative) this.unknown.delete(this.unknown.keys().next().value!);
    }
  }

  invalidate(clientId: string): void {
    this.epoch++;
    this.entries.delete(clientId);
    this.unknown.delete(clientId);
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
    this.unknown.clear();
  }

  /** Sizes, for tests and metrics. */
  get size(): { clients: number; unknown: number } {
    return { clients: this.entries.size, unknown: this.unknown.size };
  }
}
