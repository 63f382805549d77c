import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../../oauth/errors.js';

/**
 * Turns whatever a handler or Fastify itself threw into a JSON error a client can act on:
 * protocol errors as they are, Fastify's own 4xx (body too large, wrong content type, bad
 * JSON) as their OAuth-shaped equivalent, and anything else as a 500 without a stack trace,
 * logged once with the request id.
 */
export function toHttpError(err: FastifyError | Error): OAuthError {
  if (err instanceof OAuthError) return err;
  const fe = err as FastifyError;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OAuthError('invalid_request', 'request body is too large', 413);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new OAuthError('invalid_request', 'unsupported content type', 415);
    case 'FST_ERR_CTP_INVALID_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new OAuthError('invalid_request', 'missing or invalid content type', 415);
    default:
      break;
  }
  if (fe.validation) return new OAuthError('invalid_request', 'malformed request', 400, fe.message);
  if (status >= 400 && status < 500) {
    // Fastify's client errors (bad JSON, empty body, …): the message says nothing secret.
    return new OAuthError('invalid_request', 'malformed request', status, fe.message);
  }
  return new OAuthError('server_error', 'the server could not handle the request', 500, err.message);
}

export function sendError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const oauth = toHttpError(err);
  if (oauth.status >= 500) {
    req.log.error({ err }, 'request failed');
  } else if (oauth.debug) {
    req.log.info({ error: oauth.error, debug: oauth.debug }, 'request rejected');
  }
  for (const [name, value] of Object.entries(oauth.headers)) reply.header(name, value);
  return reply.code(oauth.status).type('application/json; charset=utf-8').send(oauth.toJSON());
}
