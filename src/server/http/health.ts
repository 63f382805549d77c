import type { FastifyInstance } from 'fastify';

/** A readiness check: resolves with `ok: false` (or throws) when the instance should not get traffic. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string }>;
}

export async function healthRoutes(app: FastifyInstance, opts: { checks: ReadinessCheck[] }): Promise<void> {
  // Liveness: the process answers. Nothing else, so an overloaded database never gets it restarted.
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const results: Record<string, string> = {};
    let ready = true;
    await Promise.all(opts.checks.map(async (c) => {
      try {
        const r = await c.check();
        results[c.name] = r.ok ? 'ok' : (r.detail ?? 'not ready');
        ready &&= r.ok;
      } catch (err) {
        results[c.name] = 'failed';
        ready = false;
        app.log.warn({ check: c.name, err: { message: (err as Error).message } }, 'readiness check failed');
      }
    }));
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: results });
  });
}
