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

/** What a summary row is kept per: the event, the client (as authenticated, or as claimed), and optionally the grant type and error. */
export interface TallyKey {
  client_id: string | undefined;
  grant_type?: string | undefined;
  error?: string | undefined;
}

/** What one occurrence adds to its summary: its jti (first and last kept), its scope (distinct values kept), its outcome (counted). */
export interface TallySample {
  jti?: string | undefined;
  scope?: string | undefined;
  outcome?: string | undefined;
}

export interface AuditLog {
  record(event: AuditEventName, fields?: AuditFields): void;
  /**
   * Counts one occurrence of a high-volume event into `<event>.summary`: one row (and one log
   * line) per key per minute, written with the buffer once the minute is over. A Map increment
   * on the request path; no log line, no row per occurrence.
   */
  tally(event: AuditEventName, key: TallyKey, sample?: TallySample): void;
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
  /** Distinct summary keys held per minute; beyond it, occurrences are counted under client_id `(other)`. */
  maxTallyKeys?: number;
}

interface Tally {
  event: string;
  minute: number;
  client_id: string;
  grant_type: string | undefined;
  error: string | undefined;
  count: number;
  first_at: number;
  last_at: number;
  first_jti: string | undefined;
  last_jti: string | undefined;
  scopes: Set<string>;
  outcomes: Record<string, number> | undefined;
}

const MINUTE = 60_000;
const MAX_SCOPES_PER_TALLY = 32;
const MAX_KEY_TEXT = 255;
const clip = (v: string | undefined) => (v === undefined || v.length <= MAX_KEY_TEXT ? v : v.slice(0, MAX_KEY_TEXT));

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
  const maxTallyKeys = options.maxTallyKeys ?? 10_000;
  let tallies = new Map<string, Tally>();

  const tally = (event: string, key: TallyKey, sample?: TallySample) => {
    const now = clock.now().getTime();
    const minute = now - (now % MINUTE);
    let clientId = clip(key.client_id) ?? '-';
    const grantType = clip(key.grant_type);
    const error = clip(key.error);
    let id = `${minute}\u0000${event}\u0000${clientId}\u0000${grantType ?? ''}\u0000${error ?? ''}`;
    let entry = tallies.get(id);
    if (entry === undefined && tallies.size >= maxTallyKeys) {
      // A flood of made-up client ids is counted, not remembered one by one.
      clientId = '(other)';
      id = `${minute}\u0000${event}\u0000${clientId}\u0000${grantType ?? ''}\u0000${error ?? ''}`;
      entry = tallies.get(id);
    }
    if (entry === undefined) {
      entry = {
        event: `${event}.summary`, minute, client_id: clientId, grant_type: grantType, error, count: 0, first_at: now, last_at: now,
        first_jti: sample?.jti, last_jti: undefined, scopes: new Set(), outcomes: undefined,
      };
      tallies.set(id, entry);
    }
    entry.count += 1;
    entry.last_at = now;
    if (sample === undefined) return;
    if (sample.jti !== undefined) entry.last_jti = sample.jti;
    if (sample.scope !== undefined && entry.scopes.size < MAX_SCOPES_PER_TALLY) entry.scopes.add(sample.scope);
    if (sample.outcome !== undefined) (entry.outcomes ??= {})[sample.outcome] = (entry.outcomes[sample.outcome] ?? 0) + 1;
  };

  /** Summaries of the minutes that are over (all of them: at close) become one event each. */
  const drainTallies = (all: boolean) => {
    if (tallies.size === 0) return;
    const now = clock.now().getTime();
    const current = now - (now % MINUTE);
    const kept = new Map<string, Tally>();
    for (const [id, t] of tallies) {
      if (!all && t.minute >= current) {
        kept.set(id, t);
        continue;
      }
      const scopes = [...t.scopes].sort();
      const fields: Record<string, unknown> = {
        grant_type: t.grant_type, error: t.error, minute: new Date(t.minute).toISOString(), count: t.count,
        first_at: new Date(t.first_at).toISOString(), last_at: new Date(t.last_at).toISOString(),
        first_jti: t.first_jti, last_jti: t.last_jti ?? t.first_jti,
        // Every distinct scope token seen, space-separated: the scope filter finds the row.
        scope: scopes.length > 0 ? [...new Set(scopes.flatMap((s) => s.split(' ')))].sort().join(' ') : undefined,
        scopes: scopes.length > 0 ? scopes : undefined, outcomes: t.outcomes,
      };
      for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
      audit.info({ ...fields, client_id: t.client_id, event: t.event }, t.event);
      events.inc({ event: t.event });
      if (!sink) continue;
      buffer.push({
        at: new Date(t.minute), event: t.event, request_id: null, client_id: t.client_id, sub: null, ip: null, user_agent: null, jti: null, details: fields,
      });
    }
    tallies = kept;
  };

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

  const flush = async (all = false): Promise<void> => {
    drainTallies(all);
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

  const timer = setInterval(() => { void flush(); }, options.flushIntervalMs ?? 1000);
  timer.unref();

  return {
    record(event, fields = {}) {
      // Defence in depth: a secret-bearing field never reaches the log nor the table. One copy,
      // one pass (this runs for every token issued).
      const all: AuditFields = {};
      for (const key in fields) if (!SECRETS.has(key)) all[key] = fields[key];
      all.event = event;
      audit.info(all, event);
      events.inc({ event });
      if (!sink) return;
      if (logOnly.has(event) || (typeof all.grant_type === 'string' && logOnly.has(`${event}:${all.grant_type}`))) {
        // Out of the table one by one, in it per client and minute (the log has each one).
        tally(event, { client_id: str(all.client_id) ?? undefined, grant_type: str(all.grant_type) ?? undefined }, { jti: str(all.jti) ?? undefined, scope: str(all.scope) ?? undefined });
        return;
      }
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
    tally,
    flush: () => flush(),
    async close() {
      clearInterval(timer);
      await flush(true);
    },
  };
}
