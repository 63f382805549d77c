/**
 * What each scope means, in words a person deciding on consent understands. The standard
 * OpenID Connect scopes have defaults; SCOPE_DESCRIPTIONS adds or overrides any scope.
 */
export const DEFAULT_SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  openid: 'Know who you are (your account identifier)',
  profile: 'See your name, username, picture and locale',
  email: 'See your email address',
  phone: 'See your phone number',
  address: 'See your postal address',
  offline_access: 'Keep access when you are not signed in',
};

export function describeScopes(scopes: readonly string[], custom: Readonly<Record<string, string>>): Array<{ scope: string; description: string }> {
  return scopes.map((scope) => ({ scope, description: custom[scope] ?? DEFAULT_SCOPE_DESCRIPTIONS[scope] ?? scope }));
}
