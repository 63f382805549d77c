import type { Config } from '../config.js';

/**
 * How often Node looks for requests past their deadline (http.Server
 * `connectionsCheckingInterval`). REQUEST_TIMEOUT and HEADERS_TIMEOUT are enforced only on this
 * tick, so a request is cut off between its deadline and one interval later; Node's default of
 * 30 s would let a slow client hold a connection up to 30 s past it. The check walks only the
 * connections with a request still arriving.
 */
export const DEADLINE_CHECK_INTERVAL_MS = 500;

/**
 * The timeouts of an HTTP listener, as Fastify options: both Latchkey listeners (PORT and
 * METRICS_PORT) take the same. `http` is handed to http.createServer, the only place the checking
 * interval can be set.
 */
export function listenerTimeouts(config: Pick<Config, 'requestTimeoutSeconds' | 'headersTimeoutSeconds' | 'connectionTimeoutSeconds' | 'keepAliveTimeoutSeconds'>) {
  const requestTimeout = config.requestTimeoutSeconds * 1000;
  return {
    http: { requestTimeout, headersTimeout: config.headersTimeoutSeconds * 1000, connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS },
    // A slow or silent client cannot hold a connection: the headers within HEADERS_TIMEOUT, the
    // whole request within REQUEST_TIMEOUT, no socket idle past CONNECTION_TIMEOUT, keep-alive
    // idle KEEP_ALIVE_TIMEOUT.
    requestTimeout,
    connectionTimeout: config.connectionTimeoutSeconds * 1000,
    keepAliveTimeout: config.keepAliveTimeoutSeconds * 1000,
  };
}
