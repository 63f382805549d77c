import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A strong entity tag over a body (RFC 9110 §8.8.3). */
export function strongEtag(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url')}"`;
}

/**
 * Sends a public, cacheable JSON document with its validator, or 304 when the client already
 * holds it. If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`.
 */
export function sendCacheableJson(req: FastifyRequest, reply: FastifyReply, body: string, etag: string, maxAgeSeconds: number): FastifyReply {
  reply.header('cache-control', `public, max-age=${maxAgeSeconds}`);
  reply.header('etag', etag);
  const ifNoneMatch = req.headers['if-none-match'];
  if (typeof ifNoneMatch === 'string') {
    const tags = ifNoneMatch.split(',').map((t) => t.trim().replace(/^W\//, ''));
    if (tags.includes('*') || tags.includes(etag)) return reply.code(304).send();
  }
  return reply.type('application/json; charset=utf-8').send(body);
}
