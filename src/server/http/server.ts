import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../platform/clock.js';
import type { Config } from '../config.js';
import type { Store } from '../../platform/db/database.js';
import type { AuditLog } from '../../platform/observability/audit.js';
import type { Metrics } from '../../platform/observability/metrics.js';
import { InvalidRequest, NotFound } from '../../oauth/errors.js';
import { sendError } from './errors.js';
import { healthRoutes, type ReadinessCheck } from './health.js';
import { metricsRoutes } from './metrics.js';
import { requestIdFor, REQUEST_ID_HEADER } from './request-id.js';
import { applySecurityHeaders } from './security-headers.js';
import { listenerTimeouts } from './timeouts.js';

/** What the HTTP layer is given: the services below it, already built. */
export interface ServerDeps {
  store: Store;
  logger: Logger;
  metrics: Metrics;
  audit: AuditLog;
  clock: Clock;
  readiness: ReadinessCheck[];
  /** Endpoint groups, each a Fastify plugin; capabilities add theirs to this list. */
  routes?: FastifyPluginAsync[];
}

export async function buildServer(config: Config, deps: ServerDeps): Promise<FastifyInstance> {
  const https = config.issuer.startsWith('https:');
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Fastify's two lines per request are off: the onResponse hook below writes one.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    genReqId: requestIdFor,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    ...listenerTimeouts(config),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    // Errors Fastify raises before routing (a path with broken percent-encoding) get the same
    // JSON error as everything else instead of Fastify's own shape.
    frameworkErrors: (err, req, reply) => sendError(err, req, reply),
  });

  // Graceful shutdown: once closing, every response tells its client to drop the connection,
  // so keep-alive sockets of in-flight requests end with them and close() does not wait for
  // their idle timeout.
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  // One hook for every response header (each hook is a step on the token endpoint's hot path;
  // callback-style hooks, as they cost no promise).
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, req.id);
    applySecurityHeaders(reply, https);
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  // The latency SLI for every request, and one access-log line per request as ACCESS_LOG says
  // (Fastify's own two lines per request are off).
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const seconds = reply.elapsedTime / 1000;
    deps.metrics.httpRequestDuration.observe({ method: req.method, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
    if (status >= 400) deps.metrics.httpErrors.inc({ route, status: String(status) });
    // Operator actions in the server's registry: the route pattern, never the raw URL (bounded).
    if (route.startsWith('/admin')) deps.metrics.adminRequests.inc({ route, method: req.method, status: String(status) });
    if (config.accessLog === 'all' || (config.accessLog === 'errors' && status >= 400)) {
      req.log.info({ req, res: reply, responseTime: reply.elapsedTime }, 'request completed');
    }
    done();
  });

  app.setErrorHandler((err, req, reply) => sendError(err instanceof Error ? err : new Error(String(err)), req, reply));
  app.setNotFoundHandler((req, reply) => sendError(new NotFound(`no route for ${req.method} ${req.url.split('?')[0]}`), req, reply));

  // Endpoints take forms (RFC 6749) or JSON (admin API, RFC 7591); nothing else is parsed.
  app.removeContentTypeParser('text/plain');
  await app.register(formbody, { bodyLimit: config.bodyLimit });
  // JSON as Fastify parses it (prototype poisoning refused), and only well-formed Unicode: a
  // `\ud800` escape parses to an unpaired surrogate, which neither a PostgreSQL text/jsonb value
  // nor an audit event can hold (RFC 8259 §8.2: such strings are not interoperable).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.bodyLimit }, (req, body, done) => {
    parseJson(req, body as string, (err, value) => {
      if (err) done(err, undefined);
      else if (!wellFormed(value)) done(new InvalidRequest('the JSON body holds a string that is not well-formed Unicode (an unpaired surrogate)'), undefined);
      else done(null, value);
    });
  });

  await app.register(healthRoutes, { checks: deps.readiness });
  // /metrics on the public port only behind METRICS_TOKEN, and only while METRICS_PORT does not
  // give it a listener of its own (src/server/http/metrics.ts): never open by default.
  if (config.metricsPort === undefined && config.metricsTokens.length > 0) await app.register(metricsRoutes(deps.metrics.registry, config.metricsTokens));
  for (const routes of deps.routes ?? []) await app.register(routes);

  return app;
}

/** Whether every string of a parsed JSON value, member names included, is well-formed UTF-16 (no unpaired surrogate). Iterative: nesting depth is the client's. */
function wellFormed(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return false;
    } else if (Array.isArray(v)) {
      for (const item of v) pending.push(item);
    } else if (v !== null && typeof v === 'object') {
      for (const [name, item] of Object.entries(v)) {
        if (!name.isWellFormed()) return false;
        pending.push(item);
      }
    }
  }
  return true;
}
