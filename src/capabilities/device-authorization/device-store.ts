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
 * One poll of /token, as the RFC 8628 §3.5 answer it gives — decided and recorded in one
 * statement (the row locked), so polls from several instances at once see one state each:
 * - `redeemed`: the device was approved and this poll took the tokens (exactly one poll does);
 * - `pending` / `slow_down`: not yet decided (slow_down: sooner than the interval, which grew by 5 s);
 * - `denied`, `expired`, `used` (redeemed before), `unknown` (no such code for this client);
 * - `resource_not_granted`: approved, but the poll names a resource outside the authorization's
 *   audience (RFC 8707 §2.2) — nothing redeemed, the client may poll again without it.
 */
export type PollOutcome =
  | { outcome: 'redeemed'; authorization: DeviceAuthorization }
  | { outcome: 'pending' | 'slow_down'; intervalSeconds: number }
  | { outcome: 'denied' | 'expired' | 'used' | 'unknown' | 'resource_not_granted' };

const addSeconds = (d: Date, s: number) => new Date(d.getTime() + s * 1000);

export class DeviceAuthorizationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a new authorization; false when its user code is taken (the caller draws another). */
  async create(a: NewDeviceAuthorization, now: Date, ttlSeconds: number): Promise<boolean> {
    const row = await this.db.insertInto('device_authorizations').values({
      device_code_hash: a.deviceCodeHash, user_code: a.userCode, client_id: a.clientId, scope: a.scope,
      audience: JSON.stringify(a.audience), status: 'pending', interval_seconds: a.intervalSeconds, last_polled_at: null,
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
   * A poll (RFC 8628 §3.4, §3.5) in one statement: the row of this device code and client is
   * locked, the poll time recorded, the interval grown by 5 s when the poll came sooner than it
   * allowed, and an approved authorization marked redeemed — so of N polls after approval,
   * exactly one sees `approved` and takes the tokens; the others see `redeemed`. `resources`
   * (RFC 8707 §2.2): those the token request names; an approved authorization is redeemed only
   * when its audience holds every one of them.
   */
  async poll(deviceCodeHash: Buffer, clientId: string, now: Date, resources: readonly string[] = []): Promise<PollOutcome> {
    // The audience is one resource (a JSON string) or several (an array): as an array, it contains every one requested.
    const granted = resources.length === 0
      ? sql<boolean>`true`
      : sql<boolean>`(case jsonb_typeof(audience) when 'array' then audience else jsonb_build_array(audience) end) @> ${JSON.stringify(resources)}::jsonb`;
    const result = await sql<DeviceAuthorization & { previous_status: DeviceAuthorization['status']; previous_poll: Date | null; previous_interval: number; resources_granted: boolean }>`
      with cur as (
        select device_code_hash, status, interval_seconds, last_polled_at, expires_at, ${granted} as resources_granted
        from device_authorizations where device_code_hash = ${deviceCodeHash} and client_id = ${clientId}
        for update
      )
      update device_authorizations d set
        last_polled_at = ${now},
        interval_seconds = case
          when cur.status = 'pending' and cur.last_polled_at is not null
            and cur.last_polled_at + make_interval(secs => cur.interval_seconds) > ${now}
          then cur.interval_seconds + 5 else cur.interval_seconds end,
        status = case when cur.status = 'approved' and cur.expires_at > ${now} and cur.resources_granted then 'redeemed' else cur.status end,
        redeemed_at = case when cur.status = 'approved' and cur.expires_at > ${now} and cur.resources_granted then ${now} else d.redeemed_at end
      from cur where d.device_code_hash = cur.device_code_hash
      returning d.*, cur.status as previous_status, cur.last_polled_at as previous_poll, cur.interval_seconds as previous_interval, cur.resources_granted`.execute(this.db);
    const row = result.rows[0];
    if (!row) return { outcome: 'unknown' };
    if (row.previous_status === 'redeemed') return { outcome: 'used' };
    // RFC 8628 §3.5: expired_token once the code's lifetime is over, whatever was decided.
    if (row.expires_at.getTime() <= now.getTime()) return { outcome: 'expired' };
    if (row.previous_status === 'denied') return { outcome: 'denied' };
    if (row.previous_status === 'approved') {
      if (!row.resources_granted) return { outcome: 'resource_not_granted' };
      const { previous_status: _s, previous_poll: _p, previous_interval: _i, resources_granted: _r, ...authorization } = row;
      return { outcome: 'redeemed', authorization };
    }
    return row.interval_seconds > row.previous_interval
      ? { outcome: 'slow_down', intervalSeconds: row.interval_seconds }
      : { outcome: 'pending', intervalSeconds: row.interval_seconds };
  }
}
