/** The URLs of the endpoints under the issuer that authenticate clients or are shared (assertion audiences, discovery). */
export function endpointUrls(issuer: string) {
  return {
    authorization: `${issuer}/authorize`,
    pushedAuthorizationRequest: `${issuer}/par`,
    userinfo: `${issuer}/userinfo`,
    token: `${issuer}/token`,
    introspection: `${issuer}/introspect`,
    revocation: `${issuer}/revoke`,
    registration: `${issuer}/register`,
  };
}

export type EndpointUrls = ReturnType<typeof endpointUrls>;
