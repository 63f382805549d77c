import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { makeDataDirPrivate } from './data-dir.js';
import { parseDatabaseUrl } from './database-url.js';
import { PGliteDialect } from './pglite-dialect.js';
import { failoverClient, PrimaryLocator } from './primary.js';
import type { Database } from './schema.js';

export type StoreKind = 'pglite' | 'postgres';

/** Cross-instance signals (cache invalidation): Postgres LISTEN/NOTIFY on both stores. */
export interface Notifier {
  /**
   * Subscribe to a channel; returns the unsubscribe function. An empty payload means "anything
   * may have changed": sent after a lost LISTEN connection is back (notifications sent while it
   * was down are lost), so the subscriber reloads everything it holds.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
}

export interface Store {
  kind: StoreKind;
  db: Kysely<Database>;
  notifier: Notifier;
  /** Pool figures for metrics (connections in use, idle, waiting); embedded: one connection. */
  poolStats(): { total: number; idle: number; waiting: number };
  /**
   * Whether this instance hears other instances' notifications. A lost LISTEN connection is
   * re-opened on its own with backoff; this tries at once (the readiness check asks).
   */
  ensureListening(): Promise<boolean>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** postgres:// URL; unset opens the embedded PGlite store. */
  databaseUrl?: string | undefined;
  /** Schema holding the tables on a real Postgres (created if missing). */
  schema?: string;
  poolMax?: number;
  /** Directory of the embedded store; `memory` for an in-memory one (tests). */
  dataDir?: string;
  logger?: Logger;
}

/** Channel names carry the schema so that several deployments (or test files) sharing one database never hear each other. */
function channelName(schema: string, channel: string): string {
  return `latchkey_${schema}_${channel}`;
}

/** How long a request waits for a new database connection before it is answered 503. */
const CONNECT_TIMEOUT_MS = 5_000;

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPGlite(options);
}

async function openPGlite(options: StoreOptions): Promise<Store> {
  const dir = options.dataDir ?? './data';
  // Latchkey's tables are small: PGlite's default 128 MB of shared buffers would double the
  // process's resident memory (measured: 311 → 169 MiB idle) for no benefit.
  const postgresqlconf = ['shared_buffers=16MB'];
  let pglite: PGlite;
  if (dir === 'memory') {
    pglite = await PGlite.create({ postgresqlconf });
  } else {
    const path = resolve(dir, 'pglite');
    mkdirSync(path, { recursive: true, mode: 0o700 });
    pglite = await PGlite.create({ dataDir: path, postgresqlconf });
    // What initdb and the start-up just wrote (0666 and 0644: PGlite sets these modes itself).
    // Files PostgreSQL creates from now on are 0600, and the directory is 0700 anyway.
    makeDataDirPrivate(resolve(dir));
  }
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  const schema = 'public';
  return {
    kind: 'pglite',
    db,
    notifier: {
      async listen(channel, onMessage) {
        const unlisten = await pglite.listen(channelName(schema, channel), onMessage);
        return async () => { await unlisten(); };
      },
      async notify(channel, payload) {
        await sql`select pg_notify(${channelName(schema, channel)}, ${payload})`.execute(db);
      },
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    ensureListening: async () => true,
    async close() {
      await db.destroy();
      await pglite.close();
    },
  };
}

async function openPostgres(url: string, options: StoreOptions): Promise<Store> {
  const schema = options.schema ?? 'public';
  const logger = options.logger;
  // Several hosts, or target_session_attrs=read-write: connections go to the primary, found
  // now and again after every failover (src/platform/db/primary.ts).
  const locator = new PrimaryLocator(parseDatabaseUrl(url), logger, CONNECT_TIMEOUT_MS);
  if (locator.active) await locator.locate();
  const Client = locator.active ? failoverClient(locator) : pg.Client;
  const connection: pg.ClientConfig = {
    connectionString: url,
    // Dead peers (a failed-over primary that vanished without a FIN) are found by TCP keepalive
    // instead of hanging a connection until the kernel gives up.
    keepAlive: true,
    // A host that drops packets (common right after a failover) fails a connection attempt in
    // seconds, not the kernel's two minutes: the pool, the LISTEN connection and the schema check alike.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  };
  // Make the schema exist before the pool sets it as search_path.
  if (schema !== 'public') {
    const admin = new Client(connection);
    await admin.connect();
    try {
      await admin.query(`create schema if not exists "${schema}"`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    ...connection,
    Client,
    // Named in pg_stat_activity, so an operator tells Latchkey's connections apart.
    application_name: 'latchkey',
    max: options.poolMax ?? 10,
    options: `-c search_path="${schema}"`,
    idleTimeoutMillis: 30_000,
  });
  // Every client needs an error listener for as long as it lives. pg-pool listens on idle ones
  // only (and re-emits on the pool): a checked-out client whose server connection ends (a
  // restart, a failover: "terminating connection due to administrator command") would emit an
  // unhandled 'error' and end the process. Its query fails on its own and the request answers
  // 503 (src/platform/db/unavailable.ts); the pool discards the broken client on release.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'postgres connection lost'));
  });
  pool.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'postgres pool client error'));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const notifier = new PgNotifier(Client, connection, schema, db, logger);
  return {
    kind: 'postgres',
    db,
    notifier,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async ensureListening() {
      notifier.reconnectNow();
      await notifier.settled();
      return notifier.listening;
    },
    async close() {
      await notifier.close();
      await db.destroy();
    },
  };
}

/** The longest wait between two attempts to re-open a lost LISTEN connection. */
const MAX_LISTEN_RETRY_MS = 1000;

/**
 * LISTEN needs a connection of its own that stays open. When it drops (the database restarted
 * or failed over), it is re-opened with a delay growing from 50 ms to MAX_LISTEN_RETRY_MS, every
 * channel is listened to again, and then every subscriber gets an empty payload — "anything may
 * have changed while nobody listened" — so it reloads what it holds (clients, keys, revocations)
 * and no notification sent meanwhile is lost.
 */
class PgNotifier implements Notifier {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private closed = false;
  private retryDelay = 50;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Whether a connection was lost since the last one opened: the next one tells subscribers to resync. */
  private lost = false;

  constructor(
    private readonly Client: typeof pg.Client,
    private readonly config: pg.ClientConfig,
    private readonly schema: string,
    private readonly db: Kysely<Database>,
    private readonly logger: Logger | undefined,
  ) {}

  get listening(): boolean {
    return this.client !== undefined;
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new this.Client({ ...this.config, application_name: 'latchkey-listen' });
      client.on('notification', (msg) => {
        for (const handler of this.handlers.get(msg.channel) ?? []) handler(msg.payload ?? '');
      });
      // Every pg client needs an error listener: without one, a connection the server ends
      // (a restart, a failover) is an unhandled 'error' event that ends the process.
      const onLost = (err?: Error) => {
        client.end().catch(() => {});
        if (this.client !== client) return;
        this.client = undefined;
        this.lost = true;
        this.logger?.warn({ err: { message: err?.message ?? 'connection ended' } }, 'LISTEN connection lost; reconnecting');
        this.scheduleReconnect();
      };
      client.on('error', onLost);
      client.on('end', () => onLost());
      try {
        await client.connect();
        for (const channel of this.handlers.keys()) await client.query(`listen "${channel}"`);
      } catch (err) {
        client.end().catch(() => {});
        throw err;
      }
      if (this.closed) { client.end().catch(() => {}); throw new Error('notifier closed'); }
      this.client = client;
      this.retryDelay = 50;
      if (this.lost) {
        this.lost = false;
        this.logger?.info('LISTEN connection re-established; reloading what may have changed meanwhile');
        for (const handlers of this.handlers.values()) for (const handler of handlers) handler('');
      }
      return client;
    })().finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_LISTEN_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed) return;
      this.connect().catch(() => this.scheduleReconnect());
    }, delay);
    this.retryTimer.unref();
  }

  /** Tries to reconnect now instead of at the next retry (the database answered again elsewhere). */
  reconnectNow(): void {
    if (this.closed || this.client || this.connecting) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connect().catch(() => this.scheduleReconnect());
  }

  /** Resolves when no connection attempt is in flight. */
  async settled(): Promise<void> {
    await this.connecting?.catch(() => {});
  }

  async listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
    const name = channelName(this.schema, channel);
    let set = this.handlers.get(name);
    const first = !set;
    if (!set) { set = new Set(); this.handlers.set(name, set); }
    set.add(onMessage);
    const client = await this.connect();
    if (first) await client.query(`listen "${name}"`);
    return async () => {
      set.delete(onMessage);
      if (set.size === 0) {
        this.handlers.delete(name);
        await this.client?.query(`unlisten "${name}"`).catch(() => {});
      }
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    await sql`select pg_notify(${channelName(this.schema, channel)}, ${payload})`.execute(this.db);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
