/**
 * Authorization server metadata (RFC 8414 §2, OpenID Connect Discovery 1.0 §3) is assembled
 * from what the running server has enabled: each capability contributes the members it owns
 * (the token endpoint its grant types and auth methods, the key manager jwks_uri and signing
 * algorithms, …). Nothing here is a hand-written list of features.
 */
export type ServerMetadata = Record<string, unknown>;

export class DiscoveryRegistry {
  private readonly contributors: Array<() => ServerMetadata> = [];

  /** Adds a contributor; it is called on every `build()`, so it may reflect current state (keys). */
  contribute(contributor: () => ServerMetadata): void {
    this.contributors.push(contributor);
  }

  /** Merges every contribution: arrays are united (first-seen order), other members must not clash. */
  build(): ServerMetadata {
    const metadata: ServerMetadata = {};
    for (const contributor of this.contributors) {
      for (const [name, value] of Object.entries(contributor())) {
        const existing = metadata[name];
        if (Array.isArray(existing) && Array.isArray(value)) {
          metadata[name] = [...new Set([...existing, ...value])];
        } else if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(value)) {
          throw new Error(`discovery member ${name} contributed twice with different values`);
        } else {
          metadata[name] = value;
        }
      }
    }
    return metadata;
  }
}
