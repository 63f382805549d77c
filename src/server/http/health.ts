import type { FastifyInstance } from 'fastify';

/** A readiness check: resolves with `ok: false` (or throws) when the instance should not get traffic. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string }>;
}

/** A check that has not answered within this long counts as failed: /readyz answers in bounded time. */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

function withinTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function healthRoutes(app: FastifyInstance, opts: { checks: ReadinessCheck[]; timeoutMs?: number }): Promise<void> {
  // Liveness: the process answers. Nothing else, so an overloaded database never gets it restarted.
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const results: Record<string, string> = {};
    let ready = true;
    await Promise.all(opts.checks.map(async (c) => {
      try {
        const r = await withinTimeout(c.check(), opts.timeoutMs ?? READINESS_CHECK_TIMEOUT_MS);
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
