/**
 * RFC 8693 §4.1: the `act` (actor) claim of a delegated token. Its `sub` is the current actor;
 * an earlier actor of the chain is nested as its own `act`. Read by token exchange (to extend a
 * chain) and introspection (to show it).
 */
export interface Actor {
  sub: string;
  act?: Actor;
}

/** Deeper than any chain Latchkey issues (TOKEN_EXCHANGE_MAX_DELEGATION_DEPTH is at most 10): refused unread. */
const MAX_READ_DEPTH = 32;

/**
 * A token's `act` claim as an Actor: undefined when absent, null when it is not an RFC 8693 §4.1
 * chain (each level an object with a string `sub`; §4.1 lets a level hold more identity claims,
 * which are kept out: only `sub` and the nesting are read).
 */
export function readActor(claim: unknown, depth = 0): Actor | undefined | null {
  if (claim === undefined) return undefined;
  if (depth >= MAX_READ_DEPTH || claim === null || typeof claim !== 'object' || Array.isArray(claim)) return null;
  const { sub, act } = claim as Record<string, unknown>;
  if (typeof sub !== 'string' || sub === '') return null;
  const earlier = readActor(act, depth + 1);
  if (earlier === null) return null;
  return earlier === undefined ? { sub } : { sub, act: earlier };
}

/** How many actors a chain names (0 for none). */
export function delegationDepth(actor: Actor | undefined): number {
  let depth = 0;
  for (let a = actor; a !== undefined; a = a.act) depth++;
  return depth;
}
