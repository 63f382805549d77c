import { z } from 'zod';
import { defineSlice, duration, setting, type SliceValues } from '../config/settings.js';
import { allowListEntry } from './policy.js';

/** OUTBOUND_ALLOWED_HOSTS: comma-separated host names, IP addresses and CIDR ranges, each checked here. */
const allowList = z.string().transform((text, ctx) => {
  const entries = text.split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
  const bad = entries.filter((e) => allowListEntry(e) === undefined);
  if (bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `must be comma-separated host names, IP addresses (IPv4 as a.b.c.d) or CIDR ranges (not: ${bad.join(', ')})` });
    return z.NEVER;
  }
  return entries;
});

/** The outbound fetcher (src/platform/outbound/fetcher.ts): what it may reach, and how long it waits. */
export const outboundSettings = defineSlice({
  name: 'outbound',
  settings: {
    outboundAllowedHosts: setting('OUTBOUND_ALLOWED_HOSTS', allowList.default([]).describe('Internal targets the server may send requests to after all (a client\'s jwks_uri or backchannel_logout_uri on your own network): comma-separated host names (matched exactly; their addresses are then not checked), IP addresses and CIDR ranges, e.g. keys.corp.example,10.20.0.0/16,::1. Anything else on a loopback, private, link-local, unique-local, multicast or reserved address is refused. See Outbound requests.')),
    outboundConnectTimeout: setting('OUTBOUND_CONNECT_TIMEOUT', duration(1, 60).default(3).describe('Time a server-side request has to resolve its host, connect and finish the TLS handshake.')),
    outboundTimeout: setting('OUTBOUND_TIMEOUT', duration(1, 120).default(5).describe('Time a server-side request (a client\'s jwks_uri) has in all, to the last byte of the answer. A back-channel logout has BACKCHANNEL_LOGOUT_TIMEOUT instead.')),
  },
});
export type OutboundSettings = SliceValues<typeof outboundSettings>;
