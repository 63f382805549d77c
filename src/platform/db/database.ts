import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';

export type StoreKind = 'pglite' | 'postgres';

/** Cross-instance signals (cache invalidation): Postgres LISTEN/NOTIFY on both stores. */
export interface Notifier {
  /** Subscribe to a channel; returns the unsubscribe function. */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
}

export interface Store {
  kind: StoreKind;
  db: Kysely<Database>;
  notifier: Notifier;
  /** Pool figures for metrics (connections in use, idle, waiting); embedded: one connection. */
  poolStats(): { total: number; idle: number; waiting: number };
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
    mkdirSync(path, { recursive: true });
    pglite = await PGlite.create({ dataDir: path, postgresqlconf });
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
    async close() {
      await db.destroy();
      await pglite.close();
    },
  };
}

async function openPostgres(url: string, options: StoreOptions): Promise<Store> {
  const schema = options.schema ?? 'public';
  const logger = options.logger;
  // Make the schema exist before the pool sets it as search_path.
  if (schema !== 'public') {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists "${schema}"`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? 10,
    options: `-c search_path="${schema}"`,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its server connection must not crash the process.
  pool.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'postgres pool client error'));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const notifier = new PgNotifier(url, schema, db, logger);
  return {
    kind: 'postgres',
    db,
    notifier,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await notifier.close();
      await db.destroy();
    },
  };
}

/**
 * LISTEN needs a connection of its own that stays open. When it drops, it is re-opened with
 * growing delay and every channel is listened to again; subscribers are told through a
 * `reconnected` payload-less call so they can reload what they may have missed.
 */
class PgNotifier implements Notifier {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private closed = false;
  private retryDelay = 250;

  constructor(
    private readonly url: string,
    private readonly schema: string,
    private readonly db: Kysely<Database>,
    private readonly logger: Logger | undefined,
  ) {}

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.url });
      client.on('notification', (msg) => {
        for (const handler of this.handlers.get(msg.channel) ?? []) handler(msg.payload ?? '');
      });
      client.on('error', (err) => {
        this.logger?.warn({ err: { message: err.message } }, 'LISTEN connection lost; reconnecting');
        this.client = undefined;
        client.end().catch(() => {});
        this.scheduleReconnect();
      });
      await client.connect();
      for (const channel of this.handlers.keys()) await client.query(`listen "${channel}"`);
      this.client = client;
      this.retryDelay = 250;
      return client;
    })().finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, 10_000);
    setTimeout(() => {
      if (this.closed) return;
      this.connect().catch(() => this.scheduleReconnect());
    }, delay).unref();
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
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
