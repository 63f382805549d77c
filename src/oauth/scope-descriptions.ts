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

/**
 * Each scope with its description. Only own members are read: a scope is any token a client
 * registered, and `constructor`, `__proto__` or `toString` must not find Object.prototype's.
 */
export function describeScopes(scopes: readonly string[], custom: Readonly<Record<string, string>>): Array<{ scope: string; description: string }> {
  const own = (table: Readonly<Record<string, string>>, scope: string) => (Object.hasOwn(table, scope) ? table[scope] : undefined);
  return scopes.map((scope) => ({ scope, description: own(custom, scope) ?? own(DEFAULT_SCOPE_DESCRIPTIONS, scope) ?? scope }));
}
