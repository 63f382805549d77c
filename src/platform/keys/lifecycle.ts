import type { SigningKeyState } from '../db/schema.js';
import type { SigningAlg } from './keyring.js';

/**
 * The key lifecycle as pure decisions: given every key's state and timestamps, the policy and
 * the time, what must change. The key manager applies these under an advisory lock after
 * re-reading the rows, so instances deciding at once never disagree.
 *
 *   next ──(published ≥ publishAhead and active ≥ rotationInterval old)──▶ active
 *   active ──(its successor activates)──▶ retired
 *   retired ──(every token it can have signed expired: retention)──▶ removed
 *   retired ──(latchkey keys reactivate: rollback of a bad rotation)──▶ active
 *              (the algorithm's active key becomes retired, still published; the next key stays)
 *   any published key ──(latchkey keys revoke)──▶ revoked (unpublished, untrusted at once)
 *
 * revoked and removed are final: their private key is wiped, so they can never sign again.
 */
export interface KeyRecord {
  kid: string;
  alg: SigningAlg;
  state: SigningKeyState;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  removedAt: Date | null;
  revokedAt: Date | null;
  revokedReason: string | null;
}

export interface KeyPolicy {
  /** Configured algorithms, one active key each. */
  algs: readonly SigningAlg[];
  rotationIntervalSeconds: number;
  publishAheadSeconds: number;
  /** Time from retirement to removal: longest signed token lifetime + leeway + check interval. */
  retentionSeconds: number;
}

/** Why a key started signing; `rollback`: a retired key re-activated (planReactivation). */
export type RotationTrigger = 'scheduled' | 'manual' | 'revoke' | 'rollback';

export type Transition =
  /** A new key; `active` only when nothing could have cached a JWKS yet (first start) or in an emergency. */
  | { kind: 'create'; alg: SigningAlg; state: 'next' | 'active' }
  | { kind: 'retire'; kid: string; alg: SigningAlg }
  /** next → active; `early` when it was published for less than the publish-ahead period. */
  | { kind: 'activate'; kid: string; alg: SigningAlg; trigger: RotationTrigger; early: boolean }
  /** retired → active again: the rollback of a bad rotation. */
  | { kind: 'reactivate'; kid: string; alg: SigningAlg }
  | { kind: 'remove'; kid: string; alg: SigningAlg; from: 'retired' | 'next' }
  | { kind: 'revoke'; kid: string; alg: SigningAlg; from: 'next' | 'active' | 'retired'; reason: string | null };

const ageSeconds = (since: Date, now: Date) => (now.getTime() - since.getTime()) / 1000;

function find(records: readonly KeyRecord[], alg: SigningAlg, state: SigningKeyState): KeyRecord | undefined {
  return records.find((r) => r.alg === alg && r.state === state);
}

/** The transitions due at `now` on the schedule. Empty when nothing is due. */
export function planScheduled(records: readonly KeyRecord[], policy: KeyPolicy, now: Date): Transition[] {
  const plan: Transition[] = [];
  // The very first start: no token exists that a verifier could check against a cached JWKS,
  // so the first key of each algorithm signs at once. Ever after, keys are published ahead.
  const firstStart = records.length === 0;
  for (const alg of policy.algs) {
    const active = find(records, alg, 'active');
    const next = find(records, alg, 'next');
    const nextPublishedLongEnough = next !== undefined && ageSeconds(next.createdAt, now) >= policy.publishAheadSeconds;
    if (!active) {
      if (firstStart) {
        plan.push({ kind: 'create', alg, state: 'active' }, { kind: 'create', alg, state: 'next' });
      } else if (!next) {
        // An algorithm added to SIGNING_ALGS later: published ahead like any other key.
        plan.push({ kind: 'create', alg, state: 'next' });
      } else if (nextPublishedLongEnough) {
        plan.push({ kind: 'activate', kid: next.kid, alg, trigger: 'scheduled', early: false }, { kind: 'create', alg, state: 'next' });
      }
      continue;
    }
    if (!next) {
      plan.push({ kind: 'create', alg, state: 'next' });
      continue;
    }
    const due = ageSeconds(active.activatedAt ?? active.createdAt, now) >= policy.rotationIntervalSeconds;
    // A due rotation whose next key is still too young waits for it: never sign with a key a
    // verifier may not have in its cached JWKS.
    if (due && nextPublishedLongEnough) {
      plan.push(
        { kind: 'retire', kid: active.kid, alg },
        { kind: 'activate', kid: next.kid, alg, trigger: 'scheduled', early: false },
        { kind: 'create', alg, state: 'next' },
      );
    }
  }
  for (const record of records) {
    const configured = policy.algs.includes(record.alg);
    if (record.state === 'retired' && record.retiredAt && ageSeconds(record.retiredAt, now) >= policy.retentionSeconds) {
      plan.push({ kind: 'remove', kid: record.kid, alg: record.alg, from: 'retired' });
    } else if (!configured && record.state === 'active') {
      // An algorithm dropped from SIGNING_ALGS stops signing; its tokens verify until they expire.
      plan.push({ kind: 'retire', kid: record.kid, alg: record.alg });
    } else if (!configured && record.state === 'next') {
      plan.push({ kind: 'remove', kid: record.kid, alg: record.alg, from: 'next' });
    }
  }
  return plan;
}

export class KeyLifecycleError extends Error {}

/** The kid names no key at all (the admin API answers 404). */
export class UnknownSigningKey extends KeyLifecycleError {
  constructor(readonly kid: string) {
    super(`there is no signing key with kid ${kid}`);
  }
}

/**
 * `latchkey keys rotate`: promote the next key now and create a new next, for `alg` or every
 * configured algorithm. A next key younger than the publish-ahead period is promoted anyway
 * (the operator asked for it) and flagged `early`: verifiers holding an older cached JWKS
 * reject its tokens until they refetch.
 */
export function planRotation(records: readonly KeyRecord[], policy: KeyPolicy, now: Date, alg?: SigningAlg): Transition[] {
  const algs = alg ? [alg] : policy.algs;
  const plan: Transition[] = [];
  for (const a of algs) {
    if (!policy.algs.includes(a)) throw new KeyLifecycleError(`${a} is not in SIGNING_ALGS (${policy.algs.join(', ')})`);
    const active = find(records, a, 'active');
    const next = find(records, a, 'next');
    if (!next) throw new KeyLifecycleError(`there is no next ${a} key to promote (start the server once to create the keys)`);
    if (active) plan.push({ kind: 'retire', kid: active.kid, alg: a });
    plan.push({ kind: 'activate', kid: next.kid, alg: a, trigger: 'manual', early: ageSeconds(next.createdAt, now) < policy.publishAheadSeconds });
    plan.push({ kind: 'create', alg: a, state: 'next' });
  }
  return plan;
}

/**
 * `latchkey keys revoke KID`: unpublish and stop trusting the key at once. When it was the
 * active key, the next one signs from now on (a new key if there is none) so signing never stops.
 */
export function planRevocation(records: readonly KeyRecord[], policy: KeyPolicy, now: Date, kid: string, reason: string | null): Transition[] {
  const key = records.find((r) => r.kid === kid);
  if (!key) throw new UnknownSigningKey(kid);
  if (key.state === 'revoked' || key.state === 'removed') throw new KeyLifecycleError(`signing key ${kid} is already ${key.state}`);
  const plan: Transition[] = [{ kind: 'revoke', kid, alg: key.alg, from: key.state, reason }];
  if (!policy.algs.includes(key.alg)) return plan;
  const next = find(records, key.alg, 'next');
  if (key.state === 'active') {
    if (next) {
      plan.push({ kind: 'activate', kid: next.kid, alg: key.alg, trigger: 'revoke', early: ageSeconds(next.createdAt, now) < policy.publishAheadSeconds });
    } else {
      plan.push({ kind: 'create', alg: key.alg, state: 'active' });
    }
    plan.push({ kind: 'create', alg: key.alg, state: 'next' });
  } else if (key.state === 'next') {
    plan.push({ kind: 'create', alg: key.alg, state: 'next' });
  }
  return plan;
}

/**
 * `latchkey keys reactivate KID`: the way back from a bad rotation. Only a retired key that is
 * still published (its private key kept, its tokens still verifying) may sign again; a revoked or
 * removed key never can (its private key is gone, and it was withdrawn for a reason). The
 * algorithm's active key is retired — still published, so the tokens it signed keep verifying
 * until they expire — and the next key stays next. The retired key was published all along, so
 * every verifier's cached JWKS already holds it: no publish-ahead wait applies.
 */
export function planReactivation(records: readonly KeyRecord[], policy: KeyPolicy, _now: Date, kid: string): Transition[] {
  const key = records.find((r) => r.kid === kid);
  if (!key) throw new UnknownSigningKey(kid);
  if (key.state !== 'retired') {
    throw new KeyLifecycleError(`signing key ${kid} is ${key.state}: only a retired key (still published) can be re-activated`);
  }
  if (!policy.algs.includes(key.alg)) throw new KeyLifecycleError(`${key.alg} is not in SIGNING_ALGS (${policy.algs.join(', ')})`);
  const active = find(records, key.alg, 'active');
  const plan: Transition[] = [];
  if (active) plan.push({ kind: 'retire', kid: active.kid, alg: key.alg });
  plan.push({ kind: 'reactivate', kid, alg: key.alg });
  return plan;
}
