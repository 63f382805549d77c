import pg from 'pg';
import type { Logger } from 'pino';
import type { DatabaseTarget } from './database-url.js';
import { isDatabaseUnavailable } from './unavailable.js';

/** Fewest milliseconds between two searches for the primary (a failing request storm searches once). */
const MIN_SEARCH_INTERVAL_MS = 250;

/**
 * Which host of a multi-host DATABASE_URL new connections go to, as libpq's target_session_attrs
 * does it: the hosts in their order, the first that answers (and, for read-write, accepts
 * writes) wins. Whenever a connection to the current host fails or finds it read-only (a
 * failover demoted it), the search runs again — once at a time, at most every 250 ms — and
 * the connections opened after it go to the host it found. Connections already open to a
 * demoted host are closed by their first failed write (see `failoverClient`).
 */
export class PrimaryLocator {
  private index = 0;
  private searching: Promise<void> | undefined;
  private lastSearch = 0;

  constructor(
    readonly target: DatabaseTarget,
    private readonly logger: Logger | undefined,
    private readonly connectTimeoutMs: number,
  ) {}

  /** The connection string new connections use now. */
  get url(): string {
    return this.target.urlFor(this.index);
  }

  /** Whether there is a choice to make at all (several hosts, or one that must accept writes). */
  get active(): boolean {
    return this.target.hosts.length > 0;
  }

  /** Finds the host to use; throws when none will do. */
  async locate(): Promise<void> {
    const problems: string[] = [];
    for (let i = 0; i < this.target.hosts.length; i++) {
      const client = new pg.Client({ connectionString: this.target.urlFor(i), connectionTimeoutMillis: this.connectTimeoutMs });
      client.on('error', () => {});
      try {
        await client.connect();
        if (this.target.readWrite && await readOnly(client)) { problems.push(`${hostName(this.target, i)}: read-only`); continue; }
        if (i !== this.index) this.logger?.warn({ host: hostName(this.target, i), was: hostName(this.target, this.index) }, 'database: new connections go to another host');
        this.index = i;
        return;
      } catch (err) {
        problems.push(`${hostName(this.target, i)}: ${(err as Error).message}`);
      } finally {
        client.end().catch(() => {});
      }
    }
    throw Object.assign(new Error(`no host of DATABASE_URL will do (${problems.join('; ')})`), { code: '08001' });
  }

  /** The current host failed or refused a write: search again (in the background, once at a time). */
  suspect(): void {
    if (!this.active || this.searching || Date.now() - this.lastSearch < MIN_SEARCH_INTERVAL_MS) return;
    this.lastSearch = Date.now();
    this.searching = this.locate()
      .catch((err: unknown) => this.logger?.warn({ err: { message: (err as Error).message } }, 'database: no usable host yet'))
      .finally(() => { this.searching = undefined; });
  }
}

function hostName(target: DatabaseTarget, i: number): string {
  const h = target.hosts[i]!;
  return `${h.host}:${h.port}`;
}

async function readOnly(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ transaction_read_only: string }>('show transaction_read_only');
  return r.rows[0]?.transaction_read_only === 'on';
}

/** A pg error a write to a standby gets (read_only_sql_transaction). */
const READ_ONLY = '25006';

/**
 * The pg.Client class a pool creates its connections with when a locator is active: each
 * connects to the locator's current host; with read-write, a new connection to a read-only
 * server is refused (libpq checks the same); a failed connection or query that means the host
 * is gone or demoted makes the locator search again, and a connection that found its server
 * read-only closes itself so the pool replaces it.
 */
export function failoverClient(locator: PrimaryLocator): typeof pg.Client {
  return class FailoverClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super({ ...(typeof config === 'string' ? {} : config), connectionString: locator.url });
    }

    override connect(callback?: any): any {
      const checked = (async () => {
        try {
          await super.connect();
          if (locator.target.readWrite && await readOnly(this as unknown as pg.Client)) {
            throw Object.assign(new Error('the database server is read-only (a standby); looking for the primary'), { code: READ_ONLY });
          }
        } catch (err) {
          if (isDatabaseUnavailable(err)) locator.suspect();
          this.end().catch(() => {});
          throw err;
        }
      })();
      if (!callback) return checked;
      checked.then(() => callback(null, this), (err: unknown) => callback(err));
      return undefined;
    }

    override query(...args: any[]): any {
      const result = (super.query as (...a: any[]) => any)(...args);
      if (result && typeof result.then === 'function') {
        (result as Promise<unknown>).catch((err: unknown) => {
          if (!isDatabaseUnavailable(err)) return;
          locator.suspect();
          if ((err as { code?: unknown }).code === READ_ONLY) this.end().catch(() => {});
        });
      }
      return result;
    }
  } as unknown as typeof pg.Client;
}
