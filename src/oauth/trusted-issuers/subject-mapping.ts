import type { SubjectMapping } from './issuer-config.js';

/**
 * Which Latchkey principal a verified external token stands for: the first rule (in the order
 * the operator wrote them) whose every `match` entry matches, or undefined. Pure; the rule
 * syntax is documented on subjectMappingSchema.
 */
export function matchSubjectMapping(claims: Readonly<Record<string, unknown>>, rules: readonly SubjectMapping[]): SubjectMapping | undefined {
  return rules.find((rule) => Object.entries(rule.match).every(([name, pattern]) => {
    const value = claimValue(claims, name);
    return typeof value === 'string' && patternRegExp(pattern).test(value);
  }));
}

/**
 * A claim by top-level name, or by JSON Pointer (RFC 6901) when the name starts with `/`
 * (`/kubernetes.io/namespace` → claims["kubernetes.io"]["namespace"]; `~1` is `/`, `~0` is `~`).
 */
export function claimValue(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (!name.startsWith('/')) return Object.hasOwn(claims, name) ? claims[name] : undefined;
  let node: unknown = claims;
  for (const raw of name.slice(1).split('/')) {
    // RFC 6901 §4: ~1 first, then ~0.
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, token)) return undefined;
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

const compiled = new Map<string, RegExp>();

/** `*` is one or more characters other than `/` and `:`; everything else is literal. */
function patternRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const source = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/:]+');
    re = new RegExp(`^${source}$`);
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}
