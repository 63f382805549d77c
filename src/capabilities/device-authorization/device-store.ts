import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, DeviceAuthorizationsTable } from '../../platform/db/schema.js';

export type DeviceAuthorization = Selectable<DeviceAuthorizationsTable>;

export interface NewDeviceAuthorization {
  deviceCodeHash: Buffer;
  userCode: string;
  clientId: string;
  scope: string;
  audience: string | string[];
  intervalSeconds: number;
}

/** The sign-in that approved a device (OpenID Connect Core §2: what its tokens say). */
export interface Approval {
  grantId: string;
  userId: string;
  sid: string;
  authTime: Date;
  amr: string[];
  acr: string | null;
}

/**
 * What a poll of /token finds (RFC 8628 §3.5), read by the device code and client:
 * - `redeemed`: the device was approved and this poll took the tokens (exactly one poll does);
 * - `pending`: not decided yet (whether the device polls too fast is the grant's PollPacer's to say);
 * - `denied`, `expired`, `used` (redeemed before), `unknown` (no such code for this client);
 * - `resource_not_granted`: approved, but the poll names a resource outside the authorization's
 *   audience (RFC 8707 §2.2) — nothing redeemed, the client may poll again without it.
 */
export type PollOutcome =
  | { outcome: 'redeemed'; authorization: DeviceAuthorization }
  | { outcome: 'pending'; intervalSeconds: number; expiresAt: Date }
  | { outcome: 'denied' | 'expired' | 'used' | 'unknown' | 'resource_not_granted' };

const addSeconds = (d: Date, s: number) => new Date(d.getTime() + s * 1000);

export class DeviceAuthorizationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a new authorization; false when its user code is taken (the caller draws another). */
  async create(a: NewDeviceAuthorization, now: Date, ttlSeconds: number): Promise<boolean> {
    const row = await this.db.insertInto('device_authorizations').values({
      device_code_hash: a.deviceCodeHash, user_code: a.userCode, client_id: a.clientId, scope: a.scope,
      audience: JSON.stringify(a.audience), status: 'pending', interval_seconds: a.intervalSeconds,
      created_at: now, expires_at: addSeconds(now, ttlSeconds),
      grant_id: null, user_id: null, sid: null, auth_time: null, amr: null, acr: null, decided_at: null, redeemed_at: null,
    }).onConflict((oc) => oc.column('user_code').doNothing()).returning('user_code').executeTakeFirst();
    return row !== undefined;
  }

  /** The live, undecided authorization a user code names (the verification page). */
  async pendingByUserCode(userCode: string, now: Date): Promise<DeviceAuthorization | undefined> {
    return this.db.selectFrom('device_authorizations').selectAll()
      .where('user_code', '=', userCode).where('status', '=', 'pending').where('expires_at', '>', now)
      .executeTakeFirst();
  }

  /**
   * The person's decision (RFC 8628 §3.3): only a live, pending authorization changes, once — a
   * second decision (another tab, another person with the code) finds nothing. Returns the row
   * as decided, or undefined.
   */
  async decide(userCode: string, decision: { approve: true; approval: Approval } | { approve: false; userId: string }, now: Date): Promise<DeviceAuthorization | undefined> {
    const set = decision.approve
      ? {
        status: 'approved' as const, grant_id: decision.approval.grantId, user_id: decision.approval.userId, sid: decision.approval.sid,
        auth_time: decision.approval.authTime, amr: decision.approval.amr, acr: decision.approval.acr, decided_at: now,
      }
      : { status: 'denied' as const, user_id: decision.userId, decided_at: now };
    return this.db.updateTable('device_authorizations').set(set)
      .where('user_code', '=', userCode).where('status', '=', 'pending').where('expires_at', '>', now)
      .returningAll().executeTakeFirst();
  }

  /**
   * A poll (RFC 8628 §3.4, §3.5): one indexed read while undecided — the common answer,
   * authorization_pending, costs no write. An approved authorization is taken by one conditional
   * UPDATE (approved → redeemed), so of N polls after approval exactly one gets the tokens and
   * the others find it redeemed. `resources` (RFC 8707 §2.2): those the token request names; an
   * approved authorization is redeemed only when its audience holds every one of them.
   */
  async poll(deviceCodeHash: Buffer, clientId: string, now: Date, resources: readonly string[] = []): Promise<PollOutcome> {
    const row = await this.db.selectFrom('device_authorizations').select(['status', 'expires_at', 'interval_seconds'])
      .where('device_code_hash', '=', deviceCodeHash).where('client_id', '=', clientId).executeTakeFirst();
    if (!row) return { outcome: 'unknown' };
    if (row.status === 'redeemed') return { outcome: 'used' };
    // RFC 8628 §3.5: expired_token once the code's lifetime is over, whatever was decided.
    if (row.expires_at.getTime() <= now.getTime()) return { outcome: 'expired' };
    if (row.status === 'denied') return { outcome: 'denied' };
    if (row.status === 'pending') return { outcome: 'pending', intervalSeconds: row.interval_seconds, expiresAt: row.expires_at };
    // The audience is one resource (a JSON string) or several (an array): as an array, it contains every one requested.
    const granted = resources.length === 0
      ? sql<boolean>`true`
      : sql<boolean>`(case jsonb_typeof(audience) when 'array' then audience else jsonb_build_array(audience) end) @> ${JSON.stringify(resources)}::jsonb`;
    const taken = await this.db.updateTable('device_authorizations').set({ status: 'redeemed', redeemed_at: now })
      .where('device_code_hash', '=', deviceCodeHash).where('client_id', '=', clientId)
      .where('status', '=', 'approved').where('expires_at', '>', now).where(granted)
      .returningAll().executeTakeFirst();
    if (taken) return { outcome: 'redeemed', authorization: taken };
    // Not taken: another poll took it first, or a resource is not granted (then it is still approved).
    const still = await this.db.selectFrom('device_authorizations').select('status')
      .where('device_code_hash', '=', deviceCodeHash).where('client_id', '=', clientId).executeTakeFirst();
    return still?.status === 'approved' ? { outcome: 'resource_not_granted' } : { outcome: 'used' };
  }
}
