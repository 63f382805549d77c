/**
 * Where a browser may be sent after signing in: a path on this server only. Anything else
 * (another origin, `//host`, `/\host`, a scheme) falls back to `/`, so the form is no open redirect.
 * A character a Location header cannot carry (a space, non-ASCII) is percent-encoded as UTF-8
 * (RFC 3986 §2.1), existing escapes kept; a lone surrogate has no UTF-8 form, so it gives `/`.
 */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) return '/';
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  if (/[\u0000-\u001f\\]/.test(value) || !value.isWellFormed()) return '/';
  return value.replace(/[^\u0021-\u007e]/gu, encodeURIComponent);
}
