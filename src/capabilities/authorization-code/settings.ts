import { z } from 'zod';
import { defineSlice, duration, integer, setting } from '../../platform/config/settings.js';

/** A JSON object of scope → description, e.g. {"api:read":"Read your invoices"}. */
const scopeDescriptions = z.string().transform((text, ctx) => {
  let value: unknown;
  try { value = JSON.parse(text); } catch { value = undefined; }
  if (!value || typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string' && v.length <= 200)) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object mapping scope names to descriptions of at most 200 characters' });
    return z.NEVER;
  }
  return value as Record<string, string>;
});

/** /authorize, /par and the sign-in interaction: lifetimes, the consent page's scope descriptions, rate limits. */
export const authorizationCodeSettings = defineSlice({
  name: 'authorization-code',
  settings: {
    authorizationCodeTtl: setting('AUTHORIZATION_CODE_TTL', duration(5, 600).default(60).describe('Lifetime of authorization codes.')),
    parTtl: setting('PAR_TTL', duration(10, 600).default(60).describe('Lifetime of the request_uri of a pushed authorization request (RFC 9126); it is used once.')),
    interactionTtl: setting('INTERACTION_TTL', duration(60, 86400).default(1800).describe('Time a browser has to sign in and consent before the pending authorization request expires.')),
    scopeDescriptions: setting('SCOPE_DESCRIPTIONS', scopeDescriptions.optional().transform((value) => value ?? {}).describe('JSON object of scope → plain-language description shown on the consent page; adds to and overrides the built-in ones for openid, profile, email, phone, address, offline_access.')),
    authorizeRateLimitPerIp: setting('AUTHORIZE_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(3000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /authorize and /interaction; then 429 with Retry-After (an HTML page).')),
    authorizeRateLimitPerClient: setting('AUTHORIZE_RATE_LIMIT_PER_CLIENT', integer(0, 10_000_000).default(0).describe('Requests per RATE_LIMIT_WINDOW to /authorize naming one client_id; 0 (the default): no such limit. /authorize is unauthenticated, so anyone can spend a client\'s allowance and lock its users out: set it only to shed one client\'s load.')),
    parRateLimitPerIp: setting('PAR_RATE_LIMIT_PER_IP', integer(1, 10_000_000).default(6000).describe('Requests per RATE_LIMIT_WINDOW one IP address may make to /par.')),
    parRateLimitPerClient: setting('PAR_RATE_LIMIT_PER_CLIENT', integer(1, 10_000_000).default(600).describe('Requests per RATE_LIMIT_WINDOW one client may make to /par, counted once it has authenticated.')),
  },
});
