import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { Gauge, type Registry } from 'prom-client';
import { LatencyHistogram } from './request-metrics.js';
import type { Store } from '../db/database.js';

type Operation = 'select' | 'insert' | 'update' | 'delete' | 'other';

const OPERATIONS: Partial<Record<RootOperationNode['kind'] | string, Operation>> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
};

/**
 * Times every query from compilation to its result (so including the wait for a pooled
 * connection, which is what a request feels) by operation. Two `performance.now()` calls and a
 * WeakMap entry per query; a failed query is not observed.
 */
class QueryTimer implements KyselyPlugin {
  private readonly started = new WeakMap<object, { at: number; operation: Operation }>();
  constructor(private readonly histogram: LatencyHistogram<'operation'>) {}

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.started.set(args.queryId, { at: performance.now(), operation: OPERATIONS[args.node.kind] ?? 'other' });
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const start = this.started.get(args.queryId);
    if (start) {
      this.started.delete(args.queryId);
      this.histogram.observe({ operation: start.operation }, (performance.now() - start.at) / 1000);
    }
    return args.result;
  }
}

/**
 * The store as the application uses it, with database metrics: query latency by operation
 * (both stores) and, on PostgreSQL, the pool's connections (total, idle) and the requests
 * waiting for one. The embedded PGlite store has one connection and no pool: no pool gauges.
 */
export function instrumentStore(store: Store, registry: Registry): Store {
  const histogram = new LatencyHistogram({
    name: 'latchkey_db_query_duration_seconds',
    help: 'Database query latency (including the wait for a pooled connection), by operation.',
    labelNames: ['operation'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  if (store.kind === 'postgres') {
    const gauge = (name: string, help: string, read: (s: ReturnType<Store['poolStats']>) => number) => new Gauge({
      name, help, registers: [registry],
      collect() { this.set(read(store.poolStats())); },
    });
    gauge('latchkey_db_pool_connections', 'Connections open in the PostgreSQL pool (in use or idle).', (s) => s.total);
    gauge('latchkey_db_pool_idle_connections', 'Idle connections in the PostgreSQL pool.', (s) => s.idle);
    gauge('latchkey_db_pool_waiting_requests', 'Queries waiting for a free connection of the PostgreSQL pool.', (s) => s.waiting);
  }
  return { ...store, db: store.db.withPlugin(new QueryTimer(histogram)) };
}
