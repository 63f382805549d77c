import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { NotFound } from '../../oauth/errors.js';
import { bearerToken, credentialChecker, invalidToken } from './bearer.js';
import { sendError } from './errors.js';
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
 * With METRICS_PORT set: a second, minimal HTTP server that serves /metrics only (and 404 for
 * anything else), for a port the scraper reaches and the public does not. It listens on HOST
 * (`latchkey start` starts it after the main server); the main port then has no /metrics.
 */
export async function buildMetricsServer(config: Config, deps: { logger: Logger; registry: Registry }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ server: 'metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    ...listenerTimeouts(config),
    forceCloseConnections: 'idle',
    frameworkErrors: (err, req, reply) => sendError(err, req, reply),
  });
  app.setErrorHandler((err, req, reply) => sendError(err instanceof Error ? err : new Error(String(err)), req, reply));
  app.setNotFoundHandler((req, reply) => sendError(new NotFound(`no route for ${req.method} ${req.url.split('?')[0]}`), req, reply));
  await app.register(metricsRoutes(deps.registry, config.metricsTokens));
  return app;
}
