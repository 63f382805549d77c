/**
 * The loopback hosts, as `URL.hostname` spells them: where plain http is acceptable (an issuer
 * on this machine, RFC 8252 §7.3 and §8.3 redirect URIs, a client's web pages) and where the
 * demo may run. The one list every such rule reads.
 */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname);
}

/** https, or http on a loopback host (RFC 8414 §2 issuers, RFC 8252 §8.3). */
export function isHttpsOrLoopbackHttp(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}
