import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ClientAuthInput } from '../../oauth/client-auth/authenticate.js';
import { InvalidRequest } from '../../oauth/errors.js';
import { formBody } from '../../oauth/params.js';

export const FORM = 'application/x-www-form-urlencoded';

/** Whether the request body is a form (its content type, parameters aside). */
export function isForm(req: FastifyRequest): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === FORM;
}

/** RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1: the endpoints that authenticate clients take form posts only. */
export function clientAuthInput(req: FastifyRequest): ClientAuthInput {
  if (!isForm(req)) throw new InvalidRequest(`the request body must be ${FORM}`);
  return { authorization: req.headers.authorization, body: formBody(req.body), ip: req.ip };
}

/** A member of a parsed form body, when the body is an object. */
export function formField(body: unknown, name: string): unknown {
  return body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
}

/** RFC 6749 §5.1: token responses (and their errors) are never cached. */
export function noStore(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
}
