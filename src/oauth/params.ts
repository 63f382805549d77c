import { InvalidRequest } from './errors.js';

/** A parsed application/x-www-form-urlencoded body: repeated names arrive as arrays. */
export type FormBody = Record<string, string | string[] | undefined>;

/**
 * Reads the named parameters of a request. RFC 6749 §3.1/§3.2: parameters sent without a value
 * are treated as omitted, and request parameters MUST NOT be included more than once, so a
 * repeated one is invalid_request.
 */
export function readParams<const N extends string>(body: FormBody, names: readonly N[]): Partial<Record<N, string>> {
  const out: Partial<Record<N, string>> = {};
  for (const name of names) {
    const value = Object.prototype.hasOwnProperty.call(body, name) ? body[name] : undefined;
    if (Array.isArray(value)) throw new InvalidRequest(`the ${name} parameter must not be repeated (RFC 6749 §3.1)`);
    if (typeof value === 'string' && value.includes('\u0000')) throw new InvalidRequest(`the ${name} parameter must not contain a NUL character`);
    if (typeof value === 'string' && value !== '') out[name] = value;
  }
  return out;
}

/** Like readParams, for a parameter that may legitimately be repeated (RFC 8707 `resource`). */
export function readRepeatedParam(body: FormBody, name: string): string[] {
  const value = Object.prototype.hasOwnProperty.call(body, name) ? body[name] : undefined;
  if (value === undefined) return [];
  const values = (Array.isArray(value) ? value : [value]).filter((v) => v !== '');
  if (values.some((v) => v.includes('\u0000'))) throw new InvalidRequest(`the ${name} parameter must not contain a NUL character`);
  return values;
}

/** The body of a form POST, or invalid_request for anything else (RFC 6749 §3.2). */
export function formBody(body: unknown): FormBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidRequest('the request body must be application/x-www-form-urlencoded');
  }
  return body as FormBody;
}
