import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { RequestCounter } from './request-metrics.js';
import type { Clock } from '../clock.js';
import type { NewAuditEvent } from './audit-event-store.js';
import { SECRET_FIELDS } from './logger.js';

/**
 * Security events: one structured log line each with an `event` field, and the same event in
 * the durable `audit_events` table, written in batches off the request path. Never pass a
 * token, secret, password or code here: pass its identifier (jti, family id, kid, client_id).
 * The HTTP layer passes request_id, ip and user_agent (src/server/http/audit-fields.ts).
 */
export type AuditEventName = string;

export interface AuditFields {
  client_id?: string | undefined;
  sub?: string | undefined;
  scope?: string | undefined;
  ip?: string | undefined;
  user_agent?: string | undefined;
  request_id?: string | undefined;
  jti?: string | undefined;
  [field: string]: unknown;
}

export interface AuditLog {
  record(event: AuditEventName, fields?: AuditFields): void;
  /** Writes what is buffered now (shutdown, tests). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface AuditOptions {
  /** Where batches go (the audit_events table); none: log lines only. */
  sink?: (events: NewAuditEvent[]) => Promise<void>;
  clock: Clock;
  registry?: Registry;
  flushIntervalMs?: number;
  maxBatch?: number;
  /** Events kept while the database is unreachable; older ones are dropped (and counted) beyond it. */
  maxBuffered?: number;
  /**
   * Events logged but not sent to the sink (AUDIT_DB_EXCLUDE): an event name, or `event:grant_type`
   * for that event only when its `grant_type` field is that grant.
   */
  excludeFromSink?: readonly string[];
}

const COLUMNS = new Set(['client_id', 'sub', 'ip', 'user_agent', 'request_id', 'jti']);
const SECRETS = new Set<string>(SECRET_FIELDS);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/**
 * PostgreSQL refused the statement for the data in it (SQLSTATE class 22, data exception, or 23,
 * integrity constraint violation): retrying the same events can never succeed. Anything else
 * (connection refused, timeout, shutdown) is the database being unavailable, and is retried — and
 * so is 23505, a duplicate key: only the id can collide, when its sequence lags behind the rows
 * (after a restore), and every failed attempt moves the sequence on.
 */
function refusedForItsData(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code) && code !== '23505';
}

/** What is logged of a database error (`sqlstate`: a field named `code` would be redacted as an authorization code). */
const errorSummary = (err: unknown) => ({ message: (err as Error)?.message, sqlstate: (err as { code?: unknown } | null)?.code });

export function createAuditLog(logger: Logger, options: AuditOptions): AuditLog {
  const audit = logger.child({ audit: true });
  const { sink, clock } = options;
  const maxBatch = options.maxBatch ?? 500;
  const maxBuffered = options.maxBuffered ?? 10_000;
  const logOnly = new Set(options.excludeFromSink ?? []);
  const events = new RequestCounter({ name: 'latchkey_audit_events_total', help: 'Audit events recorded, by event.', labelNames: ['event'], registers: options.registry ? [options.registry] : [] });
  const dropped = new Counter({ name: 'latchkey_audit_events_dropped_total', help: 'Audit events not written to the database: the buffer was full while it was unreachable, or it refused the event itself.', registers: options.registry ? [options.registry] : [] });
  let buffer: NewAuditEvent[] = [];
  let flushing: Promise<void> | undefined;

  /**
   * A batch the database refuses for its data (not for being unreachable): its events one at a
   * time, setting aside — logged and counted — each one refused in turn, so one bad event cannot
   * hold back every later one. Returns the events written or set aside — the whole batch unless
   * the database stopped answering on the way, and then that error.
   */
  const isolate = async (write: (events: NewAuditEvent[]) => Promise<void>, batch: NewAuditEvent[]): Promise<{ handled: NewAuditEvent[]; outage?: unknown }> => {
    const handled: NewAuditEvent[] = [];
    for (const event of batch) {
      try {
        await write([event]);
      } catch (err) {
        if (!refusedForItsData(err)) return { handled, outage: err };
        dropped.inc();
        logger.error({ err: errorSummary(err), audit_event: event.event, request_id: event.request_id }, 'audit event refused by the database; dropped (its log line remains)');
      }
      handled.push(event);
    }
    return { handled };
  };
  /**
   * The buffer without `done`. By identity, not by position: while a batch was being written,
   * record() may have dropped the oldest events (buffer full), those of the batch included.
   */
  const remove = (done: readonly NewAuditEvent[]) => {
    if (done.length === 0) return;
    const gone = new Set(done);
    buffer = buffer.filter((event) => !gone.has(event));
  };

  const flush = async (): Promise<void> => {
    if (!sink) return;
    while (flushing) await flushing;
    if (buffer.length === 0) return;
    flushing = (async () => {
      while (buffer.length > 0) {
        const batch = buffer.slice(0, maxBatch);
        try {
          await sink(batch);
          remove(batch);
        } catch (err) {
          const { handled, outage } = refusedForItsData(err) ? await isolate(sink, batch) : { handled: [], outage: err };
          remove(handled);
          if (handled.length === batch.length) continue;
          logger.error({ err: errorSummary(outage), buffered: buffer.length }, 'audit events could not be written; will retry');
          return;
        }
      }
    })().finally(() => { flushing = undefined; });
    await flushing;
  };

  const timer = sink ? setInterval(() => { void flush(); }, options.flushIntervalMs ?? 1000) : undefined;
  timer?.unref();

  return {
    record(event, fields = {}) {
      // Defence in depth: a secret-bearing field never reaches the log nor the table. One copy,
      // one pass (this runs for every token issued).
      const all: AuditFields = {};
      for (const key in fields) if (!SECRETS.has(key)) all[key] = fields[key];
      all.event = event;
      audit.info(all, event);
      events.inc({ event });
      if (!sink || logOnly.has(event) || (typeof all.grant_type === 'string' && logOnly.has(`${event}:${all.grant_type}`))) return;
      const details: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(all)) if (!COLUMNS.has(k) && k !== 'event' && v !== undefined) details[k] = v;
      buffer.push({
        at: clock.now(), event, request_id: str(all.request_id), client_id: str(all.client_id), sub: str(all.sub),
        ip: str(all.ip), user_agent: str(all.user_agent), jti: str(all.jti), details,
      });
      if (buffer.length > maxBuffered) {
        const excess = buffer.length - maxBuffered;
        buffer = buffer.slice(excess);
        dropped.inc(excess);
      }
      if (buffer.length >= maxBatch) void flush();
    },
    flush,
    async close() {
      if (timer) clearInterval(timer);
      await flush();
    },
  };
}
