import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { sha256 } from '../../platform/crypto.js';
import type { Database } from '../../platform/db/schema.js';

/** A passkey as the account page shows it. */
export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** WebAuthn §6.1.3 BE = 0: the credential can never leave its authenticator. */
  deviceBound: boolean;
  /** WebAuthn §6.1.3 BS: the credential is backed up (synced) now. */
  backedUp: boolean;
}

export type PasskeyFailure =
  /** No live challenge of this ceremony (unknown, used, expired, or issued for another account). */
  | 'bad_challenge'
  | 'unknown_credential'
  /** The credential is another account's than the one being signed in to. */
  | 'wrong_user'
  /** Malformed, or failed a check of WebAuthn §7.1/§7.2 (origin, RP ID, type, signature, user presence…). */
  | 'invalid'
  | 'user_verification_required'
  /** WebAuthn §6.1.1: the signature counter did not increase: possibly a cloned authenticator. */
  | 'counter_regression';

export type RegistrationResult =
  | { ok: true; passkey: PasskeyInfo; userVerified: boolean }
  | { ok: false; reason: PasskeyFailure };

export type AuthenticationResult =
  | { ok: true; userId: string; credentialId: string; userVerified: boolean; deviceBound: boolean; backedUp: boolean }
  /** userId (the owner of the presented credential) and credentialId once the credential is known, for the audit. */
  | { ok: false; reason: PasskeyFailure; userId?: string; credentialId?: string };

export interface PasskeyOptions {
  /** The issuer's hostname (WebAuthn §5.1.3: the RP ID scopes credentials). */
  rpId: string;
  rpName: string;
  /** The issuer's origin, which clientDataJSON.origin must equal (WebAuthn §7.1 step 9, §7.2 step 13). */
  origin: string;
  challengeTtlSeconds?: number;
}

type Purpose = 'register' | 'authenticate';

const DEFAULT_NAME = 'Passkey';
const MAX_NAME = 64;
// WebAuthn §6.1: a credential id is at most 1023 bytes (1364 base64url characters).
const CREDENTIAL_ID = /^[A-Za-z0-9_-]{1,1364}$/;
// Transports are tokens such as 'usb' or 'hybrid' (§5.8.4); anything else is dropped, not stored.
const TRANSPORT = /^[a-z-]{1,32}$/;
// With attestation 'none' (§8.7) the AAGUID may be zeroed: it then names no model.
const ZERO_AAGUID = '00000000-0000-0000-0000-000000000000';

/**
 * Passkeys (WebAuthn Level 3 credentials) and their challenges. Each challenge is stored as the
 * SHA-256 of its base64url text and consumed by one DELETE … RETURNING, so a ceremony's response
 * is accepted at most once (§13.4.3); the signature counter rule (§6.1.1) is one conditional
 * UPDATE, so two assertions racing with the same counter cannot both pass.
 */
export class Passkeys {
  private readonly ttl: number;

  constructor(private readonly db: Kysely<Database>, private readonly options: PasskeyOptions) {
    this.ttl = options.challengeTtlSeconds ?? 300;
  }

  /**
   * Creation options for a new passkey of `user`: a discoverable credential (residentKey
   * 'required', so it can sign in without a username), user verification required, the user's
   * passkeys excluded (§5.4 excludeCredentials: no second credential on one authenticator), no attestation.
   */
  async registrationOptions(user: { id: string; username: string }, now: Date): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.db.selectFrom('webauthn_credentials').select(['id', 'transports'])
      .where('user_id', '=', user.id).orderBy('created_at').execute();
    const options = await generateRegistrationOptions({
      rpName: this.options.rpName,
      rpID: this.options.rpId,
      // §5.4.3: the user handle is opaque and not personally identifying: the account id, not the username.
      userID: new TextEncoder().encode(user.id),
      userName: user.username,
      userDisplayName: user.username,
      challenge: new Uint8Array(randomBytes(32)),
      timeout: this.ttl * 1000,
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({ id: c.id, transports: c.transports })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
    await this.storeChallenge(options.challenge, 'register', user.id, now);
    return options;
  }

  /**
   * Verifies a registration response (WebAuthn §7.1) for `user` and stores the credential.
   * `name` is trimmed and cut to 64 characters; empty, it is 'Passkey'. The challenge is consumed
   * first, whatever follows: one response, one attempt.
   */
  async register(user: { id: string; username: string }, response: unknown, name: string, now: Date): Promise<RegistrationResult> {
    const challenge = clientChallenge(response);
    if (challenge === undefined) return { ok: false, reason: 'invalid' };
    if (!(await this.consumeChallenge(challenge, 'register', user.id, now))) return { ok: false, reason: 'bad_challenge' };

    let info;
    try {
      const verified = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: this.options.origin,
        expectedRPID: this.options.rpId,
        // Checked below, so that its absence has its own answer rather than 'invalid'.
        requireUserVerification: false,
      });
      if (!verified.verified) return { ok: false, reason: 'invalid' };
      info = verified.registrationInfo;
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    // §7.1 step 15: the options required user verification.
    if (!info.userVerified) return { ok: false, reason: 'user_verification_required' };

    const row = await this.db.insertInto('webauthn_credentials').values({
      id: info.credential.id,
      user_id: user.id,
      name: passkeyName(name),
      public_key: Buffer.from(info.credential.publicKey),
      counter: info.credential.counter,
      transports: stringArray((response as RegistrationResponseJSON).response.transports),
      device_bound: info.credentialDeviceType === 'singleDevice',
      backed_up: info.credentialBackedUp,
      aaguid: info.aaguid === ZERO_AAGUID ? null : info.aaguid,
      created_at: now,
      last_used_at: null,
    })
      // §7.1 step 25: a credential id already registered (to anyone) is refused.
      .onConflict((oc) => oc.column('id').doNothing())
      .returning(['id', 'name', 'created_at', 'last_used_at', 'device_bound', 'backed_up'])
      .executeTakeFirst();
    if (!row) return { ok: false, reason: 'invalid' };
    return { ok: true, passkey: toInfo(row), userVerified: info.userVerified };
  }

  /**
   * Request options. With `userId`: a second factor or step-up for that account (its passkeys
   * allowed, user verification preferred). Without: usernameless sign-in with a discoverable
   * credential (none listed, user verification required: the passkey is then both factors).
   */
  async authenticationOptions(userId: string | undefined, now: Date): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const allow = userId === undefined ? undefined
      : (await this.db.selectFrom('webauthn_credentials').select(['id', 'transports'])
        .where('user_id', '=', userId).orderBy('created_at').execute())
        .map((c) => ({ id: c.id, transports: c.transports }));
    const options = await generateAuthenticationOptions({
      rpID: this.options.rpId,
      challenge: new Uint8Array(randomBytes(32)),
      timeout: this.ttl * 1000,
      ...(allow ? { allowCredentials: allow } : {}),
      userVerification: userId === undefined ? 'required' : 'preferred',
    });
    await this.storeChallenge(options.challenge, 'authenticate', userId ?? null, now);
    return options;
  }

  /**
   * Verifies an assertion (WebAuthn §7.2). The challenge is consumed first, whatever follows:
   * one response, one attempt. Never throws on malformed input.
   */
  async authenticate(response: unknown, expected: { userId?: string; requireUserVerification: boolean }, now: Date): Promise<AuthenticationResult> {
    const challenge = clientChallenge(response);
    const id = (response as { id?: unknown } | undefined)?.id;
    if (challenge === undefined || typeof id !== 'string' || !CREDENTIAL_ID.test(id)) return { ok: false, reason: 'invalid' };
    if (!(await this.consumeChallenge(challenge, 'authenticate', expected.userId ?? null, now))) return { ok: false, reason: 'bad_challenge' };

    const credential = await this.db.selectFrom('webauthn_credentials')
      .select(['id', 'user_id', 'public_key', 'transports', 'device_bound'])
      .where('id', '=', id).executeTakeFirst();
    if (!credential) return { ok: false, reason: 'unknown_credential' };
    const known = { userId: credential.user_id, credentialId: credential.id };
    // §7.2 step 6: the credential must be the account's being signed in to …
    if (expected.userId !== undefined && credential.user_id !== expected.userId) return { ok: false, reason: 'wrong_user', ...known };
    // … and its user handle, when returned (always, for a sign-in that named no account), must name its owner.
    const userHandle: unknown = (response as AuthenticationResponseJSON).response.userHandle;
    const handleGiven = userHandle !== undefined && userHandle !== null && userHandle !== '';
    if (handleGiven ? typeof userHandle !== 'string' || Buffer.from(userHandle, 'base64url').toString('utf8') !== credential.user_id
      : expected.userId === undefined) {
      return { ok: false, reason: 'invalid', ...known };
    }

    let info;
    try {
      const verified = await verifyAuthenticationResponse({
        response: response as AuthenticationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: this.options.origin,
        expectedRPID: this.options.rpId,
        // Counter 0 here: the §6.1.1 rule is the conditional UPDATE below, after the signature
        // is known good (the library would refuse a lower counter before checking the signature,
        // and from a value read before a concurrent use).
        credential: { id: credential.id, publicKey: new Uint8Array(credential.public_key), counter: 0, transports: credential.transports },
        requireUserVerification: false,
      });
      if (!verified.verified) return { ok: false, reason: 'invalid', ...known };
      info = verified.authenticationInfo;
    } catch {
      return { ok: false, reason: 'invalid', ...known };
    }
    // §7.2 step 17: checked after the signature, so only a genuine assertion gets this answer.
    if (expected.requireUserVerification && !info.userVerified) return { ok: false, reason: 'user_verification_required', ...known };

    // §6.1.1: the counter must grow, unless the authenticator keeps none (0 before and now).
    // BS may change over a credential's life (§6.1.3), so it is recorded on each use.
    const used = await this.db.updateTable('webauthn_credentials')
      .set({ counter: info.newCounter, backed_up: info.credentialBackedUp, last_used_at: now })
      .where('id', '=', credential.id)
      .where(sql<boolean>`(counter < ${info.newCounter} or (${info.newCounter}::bigint = 0 and counter = 0))`)
      .returning(['device_bound', 'backed_up'])
      .executeTakeFirst();
    if (!used) return { ok: false, reason: 'counter_regression', ...known };
    return { ok: true, ...known, userVerified: info.userVerified, deviceBound: used.device_bound, backedUp: used.backed_up };
  }

  /** The account's passkeys, oldest first. */
  async list(userId: string): Promise<PasskeyInfo[]> {
    const rows = await this.db.selectFrom('webauthn_credentials')
      .select(['id', 'name', 'created_at', 'last_used_at', 'device_bound', 'backed_up'])
      .where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toInfo);
  }

  async count(userId: string): Promise<number> {
    const row = await this.db.selectFrom('webauthn_credentials').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('user_id', '=', userId).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Removes one of the account's passkeys; false when it has none of that id. */
  async remove(userId: string, credentialId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('webauthn_credentials')
      .where('id', '=', credentialId).where('user_id', '=', userId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  async removeAll(userId: string): Promise<number> {
    const result = await this.db.deleteFrom('webauthn_credentials').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  private async storeChallenge(challenge: string, purpose: Purpose, userId: string | null, now: Date): Promise<void> {
    await this.db.insertInto('webauthn_challenges').values({
      challenge_hash: sha256(challenge), purpose, user_id: userId,
      expires_at: new Date(now.getTime() + this.ttl * 1000),
    }).execute();
  }

  /** Consumes a live challenge of this ceremony issued for `userId` (or for no account): true once. */
  private async consumeChallenge(challenge: string, purpose: Purpose, userId: string | null, now: Date): Promise<boolean> {
    const row = await this.db.deleteFrom('webauthn_challenges')
      .where('challenge_hash', '=', sha256(challenge))
      .where('purpose', '=', purpose)
      .where('user_id', userId === null ? 'is' : '=', userId)
      .where('expires_at', '>', now)
      .returning('challenge_hash')
      .executeTakeFirst();
    return row !== undefined;
  }
}

/** The cleanup step's batch: at most `n` expired challenges (see src/platform/db/cleanup.ts). */
export function expiredChallengesBatch(now: Date, n: number): RawBuilder<unknown> {
  return sql`delete from webauthn_challenges where challenge_hash in (
    select challenge_hash from webauthn_challenges where expires_at < ${now} limit ${n} for update skip locked)`;
}

/** The challenge a response's clientDataJSON claims (§5.8.1), read before verification to find its row; undefined when malformed. */
function clientChallenge(response: unknown): string | undefined {
  if (typeof response !== 'object' || response === null) return undefined;
  const inner = (response as { response?: unknown }).response;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const clientDataJSON = (inner as { clientDataJSON?: unknown }).clientDataJSON;
  if (typeof clientDataJSON !== 'string' || clientDataJSON.length > 8192) return undefined;
  try {
    const challenge = (JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown }).challenge;
    return typeof challenge === 'string' && challenge.length > 0 && challenge.length <= 256 ? challenge : undefined;
  } catch {
    return undefined;
  }
}

/** The name as shown: control characters removed (Postgres text refuses NUL), trimmed, at most 64 characters. */
function passkeyName(name: string): string {
  const trimmed = Array.from(name.replace(/[\u0000-\u001f\u007f]/g, '').trim()).slice(0, MAX_NAME).join('').trim();
  return trimmed === '' ? DEFAULT_NAME : trimmed;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && TRANSPORT.test(v)).slice(0, 8) : [];
}

function toInfo(row: { id: string; name: string; created_at: Date; last_used_at: Date | null; device_bound: boolean; backed_up: boolean }): PasskeyInfo {
  return { id: row.id, name: row.name, createdAt: row.created_at, lastUsedAt: row.last_used_at, deviceBound: row.device_bound, backedUp: row.backed_up };
}
