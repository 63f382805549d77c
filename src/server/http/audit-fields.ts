import type { FastifyRequest } from 'fastify';

/**
 * Who asked, for an audit event raised while handling `req`. Passed explicitly rather than
 * through AsyncLocalStorage: on Node 20 its promise hooks cost 13 % of the token endpoint.
 */
export function requestAuditFields(req: FastifyRequest): { ip: string; request_id: string; user_agent: string | undefined } {
  return { ip: req.ip, request_id: req.id, user_agent: req.headers['user-agent'] };
}
