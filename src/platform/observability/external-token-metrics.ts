import type { Registry } from 'prom-client';
import { RequestCounter } from './request-metrics.js';

/** latchkey_external_tokens_total. Labels are bounded: issuer is a configured name or `unknown`, use and outcome fixed sets. */
export type ExternalTokenCounter = RequestCounter<'issuer' | 'use' | 'outcome'>;

const counters = new WeakMap<Registry, ExternalTokenCounter>();

/** The counter of external tokens verified (src/oauth/trusted-issuers/external-tokens.ts), once per registry. */
export function externalTokenCounter(registry: Registry): ExternalTokenCounter {
  let counter = counters.get(registry);
  if (!counter) {
    // On the workload authentication path: the request-path counter (no per-call label validation).
    counter = new RequestCounter({
      name: 'latchkey_external_tokens_total',
      help: 'Tokens of trusted external issuers verified, by issuer (its configured name, or unknown), use (client_assertion, authorization_grant, subject_token, actor_token) and outcome (accepted, rejected).',
      labelNames: ['issuer', 'use', 'outcome'],
      registers: [registry],
    });
    counters.set(registry, counter);
  }
  return counter;
}
