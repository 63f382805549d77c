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

/**
 * `scheme://host` of an absolute URI (no port, no path), or undefined when it does not parse or
 * has no host (a native app's private-use scheme): what "the same host and scheme" (RFC 7591 §5)
 * compares.
 */
export function schemeAndHost(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    return url.hostname ? `${url.protocol}//${url.hostname}` : undefined;
  } catch {
    return undefined;
  }
}
