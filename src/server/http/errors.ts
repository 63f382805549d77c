import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError, TemporarilyUnavailable } from '../../oauth/errors.js';
import { isDatabaseUnavailable } from '../../platform/db/unavailable.js';
import { errorPage } from '../../platform/ui/pages.js';
import { sendHtml } from './html.js';

/** Seconds a client is told to wait before retrying while the database is unavailable. */
export const RETRY_AFTER_SECONDS = 2;

/**
 * Turns whatever a handler or Fastify itself threw into a JSON error a client can act on:
 * protocol errors as they are, Fastify's own 4xx (body too large, wrong content type, bad
 * JSON) as their OAuth-shaped equivalent, a database that cannot answer now as 503
 * `temporarily_unavailable` with Retry-After (RFC 6749 §5.2 / §4.1.2.1; RFC 9110 §10.2.3), and
 * anything else as a 500 without a stack trace, logged once with the request id.
 */
export function toHttpError(err: FastifyError | Error): OAuthError {
  if (err instanceof OAuthError) return err;
  const fe = err as FastifyError;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  // Only an error of our own making is an outage: a client's aborted body (ECONNRESET, which
  // Fastify passes on with status 400) is the client's, however database-like its code.
  if (status >= 500 && isDatabaseUnavailable(err)) {
    const unavailable = new TemporarilyUnavailable('the service is temporarily unavailable; retry shortly', err.message);
    unavailable.headers['retry-after'] = String(RETRY_AFTER_SECONDS);
    return unavailable;
  }
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

/**
 * The error as JSON — or, for a server-side failure of a request from a browser (its Accept
 * names text/html: a page, /authorize, a form post), as an HTML page saying the same.
 */
export function sendError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const oauth = toHttpError(err);
  if (oauth.status === 503) {
    // Expected while the database restarts or fails over: one line, no stack.
    req.log.warn({ error: oauth.error, debug: oauth.debug }, 'database unavailable; answered 503');
  } else if (oauth.status >= 500) {
    req.log.error({ err }, 'request failed');
  } else if (oauth.debug) {
    req.log.info({ error: oauth.error, debug: oauth.debug }, 'request rejected');
  }
  for (const [name, value] of Object.entries(oauth.headers)) reply.header(name, value);
  if (oauth.status >= 500 && wantsHtml(req.headers.accept)) {
    const page = oauth.status === 503
      ? errorPage('Temporarily unavailable', 'The sign-in service cannot answer right now. Please try again in a few seconds.')
      : errorPage('Something went wrong', 'The sign-in service could not handle this request.');
    return sendHtml(reply, oauth.status, page);
  }
  return reply.code(oauth.status).type('application/json; charset=utf-8').send(oauth.toJSON());
}

/** A browser's navigation names text/html in Accept; OAuth clients and resource servers do not. */
function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept);
}
