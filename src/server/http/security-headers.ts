import type { FastifyReply } from 'fastify';

/**
 * Headers every response carries. HTML pages also get a Content-Security-Policy that forbids
 * framing and every external source; a page needing more (a form_post to a client) sets its own
 * CSP before sending, and that one is kept.
 */
export function htmlCsp(options: { formAction?: readonly string[]; scriptHashes?: readonly string[] } = {}): string {
  return [
    "default-src 'none'",
    // A page's script (form_post, passkeys) runs only by its hash, and talks to this origin only.
    ...(options.scriptHashes?.length ? [`script-src ${options.scriptHashes.join(' ')}`, "connect-src 'self'"] : []),
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    // A form's redirect is checked against form-action too: a page whose form ends at a
    // client's redirect URI (consent, form_post) names that origin.
    `form-action ${(options.formAction ?? ["'self'"]).join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** CSP `form-action` source for a redirect URI: its origin, or its scheme for a native app's private-use scheme. */
export function formActionSource(uri: string): string {
  const url = new URL(uri);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
}

export const HTML_CSP = htmlCsp();

export function applySecurityHeaders(reply: FastifyReply, https: boolean): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  if (https) reply.header('strict-transport-security', 'max-age=31536000');
  // RFC 6749 §5.1 and RFC 6750 §5.3: nothing the server answers is cached unless a route says so.
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  const type = reply.getHeader('content-type');
  if (typeof type === 'string' && type.startsWith('text/html')) {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', HTML_CSP);
    reply.header('x-frame-options', 'DENY');
  }
}
