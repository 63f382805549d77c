import type { ClientMetadata } from '../client-metadata.js';
import type { GrantType, TokenGrant } from './grant.js';

/**
 * The grant types of this server, by grant_type: the one table (no switch on grant_type
 * anywhere). Built from the capabilities' declarations; client validation, discovery
 * (grant_types_supported, RFC 8414 §2) and the token endpoint all read it.
 */
export class GrantTypeRegistry<G extends GrantType = GrantType> {
  private readonly byType = new Map<string, G>();

  constructor(grantTypes: Iterable<G> = []) {
    for (const grantType of grantTypes) this.add(grantType);
  }

  add(grantType: G): void {
    if (this.byType.has(grantType.grantType)) throw new Error(`grant type ${grantType.grantType} registered twice`);
    this.byType.set(grantType.grantType, grantType);
  }

  get(grantType: string): G | undefined {
    return this.byType.get(grantType);
  }

  has(grantType: string): boolean {
    return this.byType.has(grantType);
  }

  /** The grant_type values, in registration order. */
  grantTypes(): string[] {
    return [...this.byType.keys()];
  }

  /**
   * The problems of a client's metadata under the rules of each grant type it registered for,
   * in registration order (whatever order the client listed them in, the same problem comes first).
   */
  clientMetadataProblems(metadata: ClientMetadata): string[] {
    return [...this.byType.values()]
      .filter((grantType) => metadata.grant_types.includes(grantType.grantType))
      .flatMap((grantType) => grantType.clientMetadataProblems?.(metadata) ?? []);
  }
}

/** The grants the token endpoint serves: a registry of grants with their handlers. */
export type GrantRegistry = GrantTypeRegistry<TokenGrant>;
