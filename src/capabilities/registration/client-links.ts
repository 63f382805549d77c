import type { ClientMetadata } from '../../oauth/client-metadata.js';
import { schemeAndHost } from '../../platform/uris.js';

/** The members that send a person to the client's own pages (the consent page links its policy and terms). */
const LINK_MEMBERS = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri'] as const;

/**
 * RFC 7591 §5: the server "SHOULD check to see if the logo_uri, tos_uri, client_uri, and
 * policy_uri have the same host and scheme as the those defined in the array of redirect_uris".
 * Otherwise a self-registered client borrows a bank's privacy policy and logo to look like it
 * on the consent page. The port and path may differ. The problem with the first member that
 * fails, or undefined; a client without a web redirect URI may have no such link.
 */
export function foreignLinkProblem(metadata: ClientMetadata): string | undefined {
  const allowed = new Set(metadata.redirect_uris.map(schemeAndHost).filter((origin) => origin !== undefined));
  for (const member of LINK_MEMBERS) {
    const uri = metadata[member];
    if (uri === undefined) continue;
    const origin = schemeAndHost(uri);
    if (origin === undefined || !allowed.has(origin)) {
      return `${member}: must have the scheme and host of one of the redirect_uris (RFC 7591 §5)`;
    }
  }
  return undefined;
}
