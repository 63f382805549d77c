import { AdminSocketBusyError } from '../server/http/admin-socket.js';
import { createApp } from '../server/app.js';
import type { Config } from '../server/config.js';
import type { Command } from './command.js';
import { configOrExit } from './config-errors.js';

/** Where /metrics is served (src/server/http/metrics.ts), for the banner. */
function metricsLine(listener: string | undefined, config: Config): string {
  const bearer = config.metricsTokens.length > 0 ? ' (bearer METRICS_TOKEN)' : '';
  if (listener) return `${listener}/metrics (also /healthz, /readyz)${bearer}`;
  if (bearer) return `${config.issuer}/metrics${bearer}`;
  return 'off (METRICS_PORT serves it on a private listener; METRICS_TOKEN on this port behind a bearer token)';
}

export const startCommand: Command = {
  name: 'start',
  summary: 'run the server (migrates the database first)',
  help: `Usage: latchkey start

Starts the HTTP server. Configuration comes from the environment (see the README table or
\`latchkey config\`). Without DATABASE_URL the embedded store lives under DATA_DIR (./data),
created on first start together with its key-encryption secret.

SIGTERM or SIGINT stops accepting connections, drains in-flight requests for at most
SHUTDOWN_TIMEOUT, closes the database and exits 0; 1 when draining took longer or closing
failed.`,
  async run() {
    const config = configOrExit();
    const startedAt = performance.now();
    const app = await createApp(config);
    const { server, context } = app;
    const { logger } = context;

    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: draining in-flight requests');
      const deadline = setTimeout(() => {
        logger.error({ timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutdown timed out; exiting');
        process.exit(1);
      }, config.shutdownTimeoutSeconds * 1000);
      deadline.unref();
      app.close().then(
        () => { context.audit.record('server.stopped', { signal }); logger.flush?.(); process.exit(0); },
        (err: unknown) => { logger.error({ err }, 'shutdown failed'); process.exit(1); },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));

    const address = await server.listen({ port: config.port, host: config.host });
    const metricsAddress = app.metricsServer ? await app.metricsServer.listen({ port: config.metricsPort!, host: config.metricsHost }) : undefined;
    let socketPath: string | undefined;
    if (app.adminSocket) {
      try {
        socketPath = await app.adminSocket.listen();
      } catch (err) {
        if (err instanceof AdminSocketBusyError) throw err;
        logger.warn({ err: { message: (err as Error).message } }, 'the local admin socket could not be opened; the CLI cannot act on this server while it runs');
      }
    }
    const readyMs = Math.round(performance.now() - startedAt);
    context.audit.record('server.started', {
      address, issuer: config.issuer, store: context.store.kind, ready_ms: readyMs,
      // What the durable audit trail leaves out (AUDIT_DB_EXCLUDE), said where an operator looks first.
      audit_log_only: config.auditDbExclude.length > 0 ? config.auditDbExclude.join(',') : 'none',
    });
    const store = context.store.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL (DATABASE_URL)';
    process.stdout.write([
      '',
      `  Latchkey is running: ${config.issuer}`,
      `  listening on ${address}, store: ${store}, ready in ${readyMs} ms`,
      '',
      ...(app.demo ? [
        '  Demo data created (first start). Try the whole sign-in flow in a browser:',
        `    open       ${config.issuer}/try`,
        `    sign in as ${app.demo.username} / ${app.demo.password}   (shown this once; \`latchkey users set-password ${app.demo.username}\` to change it)`,
        '',
      ] : []),
      `  sign in:    ${config.issuer}/login        discovery: ${config.issuer}/.well-known/openid-configuration`,
      `  health:     ${config.issuer}/healthz   ready: ${config.issuer}/readyz`,
      `  metrics:    ${metricsLine(metricsAddress, config)}`,
      ...(socketPath ? [`  admin:      ${socketPath} (local socket: \`latchkey keys|users|tokens|clients|issuers|audit\` act on this server)`] : []),
      '',
      '  Stop with Ctrl-C. Configuration: `latchkey config`; commands: `latchkey --help`.',
      '',
    ].join('\n') + '\n');
    return new Promise<number>(() => {}); // runs until a signal stops it
  },
};
