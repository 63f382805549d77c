import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { NotFound } from '../../oauth/errors.js';
import { bearerToken, credentialChecker, invalidToken } from './bearer.js';
import { sendError } from './errors.js';
import { healthRoutes, type ReadinessCheck } from './health.js';
import { listenerTimeouts } from './timeouts.js';

/**
 * GET /metrics (Prometheus text format). With METRICS_TOKEN set, only for a request whose
 * `Authorization: Bearer` matches one of the configured tokens (compared in constant time);
 * anything else is 401 `invalid_token` with a Bearer challenge (RFC 6750 §3.1).
 */
export function metricsRoutes(registry: Registry, tokens: readonly string[]): FastifyPluginAsync {
  const tokenValid = tokens.length > 0 ? credentialChecker(tokens) : undefined;
  return async (app) => {
    app.get('/metrics', async (req, reply) => {
      if (tokenValid && !tokenValid(bearerToken(req.headers.authorization))) {
        throw invalidToken('latchkey-metrics', 'a valid metrics token is required');
      }
      reply.header('Cache-Control', 'no-store').type(registry.contentType);
      return registry.metrics();
    });
  };
}

/**
 * With METRICS_PORT set: a second, minimal HTTP server — the management listener — that serves
 * /metrics and the health probes /healthz and /readyz (404 for anything else), for a port the
 * scraper and the orchestrator's probes reach and the public does not. It listens on
 * METRICS_HOST, loopback unless configured (`latchkey start` starts it after the main server);
 * the main port then has no /metrics.
 */
export async function buildMetricsServer(config: Config, deps: { logger: Logger; registry: Registry; readiness?: ReadinessCheck[] }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ server: 'metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    ...listenerTimeouts(config),
    forceCloseConnections: 'idle',
    frameworkErrors: (err, req, reply) => sendError(err, req, reply),
  });
  app.setErrorHandler((err, req, reply) => sendError(err instanceof Error ? err : new Error(String(err)), req, reply));
  app.setNotFoundHandler((req, reply) => sendError(new NotFound(`no route for ${req.method} ${req.url.split('?')[0]}`), req, reply));
  await app.register(healthRoutes, { checks: deps.readiness ?? [] });
  await app.register(metricsRoutes(deps.registry, config.metricsTokens));
  return app;
}
