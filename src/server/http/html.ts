import type { FastifyReply } from 'fastify';

/** Answers with a server-rendered page (src/platform/ui/pages.ts). */
export function sendHtml(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}
