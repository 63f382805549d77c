import { afterEach, describe, expect, it, vi } from 'vitest';
import { ACCESS_TOKEN_REVOKED_CHANNEL, RevokedSet, type RevocationTable } from '../../src/oauth/revocation-state.js';
import { ManualClock } from '../support/clock.js';
import { MemoryNotifier } from '../support/kernel.js';

/** The durable table, in memory; `failing` makes its reads reject. */
class MemoryRevocationTable implements RevocationTable {
  readonly rows = new Map<string, { clientId: string; expiresAt: Date; reason: string }>();
  failing = false;
  async add(id: string, clientId: string, expiresAt: Date, reason: string): Promise<boolean> {
    if (this.failing) throw new Error('table unavailable');
    const added = !this.rows.has(id);
    this.rows.set(id, { clientId, expiresAt, reason });
    return added;
  }
  async live(now: Date): Promise<Array<[string, Date]>> {
    if (this.failing) throw new Error('table unavailable');
    return [...this.rows].filter(([, r]) => r.expiresAt > now).map(([id, r]) => [id, r.expiresAt]);
  }
}

const CHANNEL = ACCESS_TOKEN_REVOKED_CHANNEL;

function setup() {
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const table = new MemoryRevocationTable();
  const notifier = new MemoryNotifier();
  const set = new RevokedSet(CHANNEL, table, notifier, () => clock.now());
  const inSeconds = (s: number) => new Date(clock.now().getTime() + s * 1000);
  return { clock, table, notifier, set, inSeconds };
}

afterEach(() => { vi.useRealTimers(); });

describe('the in-memory revocation set', () => {
  it('add: the table first, then memory, then one notification "<id> <exp ms> <revoked at ms>" to the other instances', async () => {
    const { table, notifier, set, inSeconds } = setup();
    const exp = inSeconds(600);
    await set.add('jti-1', 'client-a', exp, 'revoked_by_client');
    expect(set.has('jti-1')).toBe(true);
    expect(set.has('jti-2')).toBe(false);
    expect(table.rows.get('jti-1')).toEqual({ clientId: 'client-a', expiresAt: exp, reason: 'revoked_by_client' });
    expect(notifier.sent).toEqual([{ channel: CHANNEL, payload: `jti-1 ${exp.getTime()} ${Date.parse('2030-01-01T00:00:00Z')}` }]);
  });
  it('add: true when this call revoked the id, false when the table already held it (still notified)', async () => {
    const { notifier, set, inSeconds } = setup();
    expect(await set.add('grant-1', 'client-a', inSeconds(600), 'authorization_code_replayed')).toBe(true);
    expect(await set.add('grant-1', 'client-a', inSeconds(601), 'authorization_code_replayed')).toBe(false);
    expect(notifier.sent).toHaveLength(2);
  });
  it('add: nothing in memory and nothing notified when the table write fails', async () => {
    const { table, notifier, set, inSeconds } = setup();
    table.failing = true;
    await expect(set.add('jti-1', 'c', inSeconds(60), 'r')).rejects.toThrow('table unavailable');
    expect(set.has('jti-1')).toBe(false);
    expect(notifier.sent).toEqual([]);
  });
  it('addWritten: the ids at once and a single reload notification, a bare "*" every version reads as one; nothing written to the table', async () => {
    const { table, notifier, set, inSeconds } = setup();
    await set.addWritten(['g1', 'g2', 'g3'], inSeconds(600));
    expect(['g1', 'g2', 'g3', 'g4'].map((id) => set.has(id))).toEqual([true, true, true, false]);
    // Not `* <time>`: an instance from before the propagation metric would take that for an id and
    // not re-read the table until its next periodic reload (a rolling upgrade).
    expect(notifier.sent).toEqual([{ channel: CHANNEL, payload: '*' }]);
    expect(table.rows.size).toBe(0);
    await set.addWritten([], inSeconds(600));
    expect(notifier.sent).toHaveLength(1);
  });
  it('reload: merges the live entries of the table, keeping what a notification added', async () => {
    const { table, set, notifier, inSeconds } = setup();
    await set.start(3600, () => {});
    table.rows.set('written-elsewhere', { clientId: 'c', expiresAt: inSeconds(60), reason: 'r' });
    table.rows.set('expired-in-table', { clientId: 'c', expiresAt: inSeconds(-1), reason: 'r' });
    notifier.deliver(CHANNEL, `notified-only ${inSeconds(60).getTime()}`);
    expect(set.has('written-elsewhere')).toBe(false);
    await set.reload();
    expect(set.has('written-elsewhere')).toBe(true);
    expect(set.has('notified-only')).toBe(true);
    expect(set.has('expired-in-table')).toBe(false);
  });
  it('reload: forgets an entry once its tokens have expired (at exp exactly)', async () => {
    const { clock, set, inSeconds } = setup();
    await set.add('short', 'c', inSeconds(60), 'r');
    await set.add('long', 'c', inSeconds(120), 'r');
    clock.advance(59);
    await set.reload();
    expect([set.has('short'), set.has('long')]).toEqual([true, true]);
    clock.advance(1);
    await set.reload();
    expect([set.has('short'), set.has('long')]).toEqual([false, true]);
  });
});

describe('the revocation set across instances (start, notifications, periodic reload)', () => {
  it('start: loads the live entries, then follows "<id> <exp>" notifications', async () => {
    const { table, notifier, set, inSeconds } = setup();
    table.rows.set('old', { clientId: 'c', expiresAt: inSeconds(30), reason: 'r' });
    table.rows.set('gone', { clientId: 'c', expiresAt: inSeconds(0), reason: 'r' });
    const stop = await set.start(60, () => {});
    expect([set.has('old'), set.has('gone')]).toEqual([true, false]);
    notifier.deliver(CHANNEL, `from-b ${inSeconds(600).getTime()}`);
    expect(set.has('from-b')).toBe(true);
    // Another channel is another set's.
    notifier.deliver('grant_revoked', `other ${inSeconds(600).getTime()}`);
    expect(set.has('other')).toBe(false);
    await stop();
  });
  it('propagation: a notification carrying the revocation time is observed once applied (never negative; none without a time)', async () => {
    const clock = new ManualClock('2030-01-01T00:00:10Z');
    const table = new MemoryRevocationTable();
    const notifier = new MemoryNotifier();
    const observed: number[] = [];
    const set = new RevokedSet(CHANNEL, table, notifier, () => clock.now(), (s) => observed.push(s));
    const stop = await set.start(3600, () => {});
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    notifier.deliver(CHANNEL, `jti-x ${t0 + 600_000} ${t0 + 7_500}`); // revoked 2.5 s before this instance's now
    expect(set.has('jti-x')).toBe(true);
    expect(observed).toEqual([2.5]);
    notifier.deliver(CHANNEL, `jti-y ${t0 + 600_000} ${t0 + 60_000}`); // a clock ahead of this one: 0
    notifier.deliver(CHANNEL, `jti-z ${t0 + 600_000}`); // an older instance's payload: applied, not observed
    expect(set.has('jti-z')).toBe(true);
    expect(observed).toEqual([2.5, 0]);
    notifier.deliver(CHANNEL, `* ${t0 + 4_000}`); // a timed bulk notification is still understood: observed once the re-read is done
    await vi.waitFor(() => expect(observed).toEqual([2.5, 0, 6]));
    await stop();
  });
  it('ignores a notification that is not "<id> <finite number>"', async () => {
    const { notifier, set } = setup();
    await set.start(60, () => {});
    for (const payload of ['', 'lonely', 'id not-a-number', ' 123', 'id Infinity']) notifier.deliver(CHANNEL, payload);
    for (const id of ['', 'lonely', 'id', ' 123']) expect(set.has(id), id).toBe(false);
  });
  it('a "*" notification re-reads the table; a failed re-read goes to onError', async () => {
    const { table, notifier, set, inSeconds } = setup();
    const errors: unknown[] = [];
    await set.start(3600, (err) => errors.push(err));
    table.rows.set('bulk-1', { clientId: 'c', expiresAt: inSeconds(60), reason: 'r' });
    notifier.deliver(CHANNEL, '*');
    await vi.waitFor(() => expect(set.has('bulk-1')).toBe(true));
    table.failing = true;
    notifier.deliver(CHANNEL, '*');
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect((errors[0] as Error).message).toBe('table unavailable');
  });
  it('an empty notification (the LISTEN connection is back after a loss) re-reads the table at once', async () => {
    const { table, set, notifier, inSeconds } = setup();
    await set.start(3600, () => {});
    // Revoked on another instance while this one's LISTEN connection was down: no "<id> <exp>" arrived.
    table.rows.set('missed-1', { clientId: 'c', expiresAt: inSeconds(60), reason: 'r' });
    expect(set.has('missed-1')).toBe(false);
    notifier.deliver(CHANNEL, '');
    await vi.waitFor(() => expect(set.has('missed-1')).toBe(true));
  });
  it('re-reads the table every reloadSeconds (a lost notification), until stopped', async () => {
    vi.useFakeTimers();
    const { table, notifier, set, inSeconds } = setup();
    const errors: unknown[] = [];
    const stop = await set.start(30, (err) => errors.push(err));
    expect(notifier.listenerCount(CHANNEL)).toBe(1);
    table.rows.set('missed', { clientId: 'c', expiresAt: inSeconds(600), reason: 'r' });
    await vi.advanceTimersByTimeAsync(29_999);
    expect(set.has('missed')).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(set.has('missed')).toBe(true);
    table.failing = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(errors).toHaveLength(1);
    await stop();
    expect(notifier.listenerCount(CHANNEL)).toBe(0);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(errors).toHaveLength(1);
  });
  it('start fails when the first load does, and leaves no subscription behind', async () => {
    const { table, set, notifier } = setup();
    table.failing = true;
    await expect(set.start(60, () => {})).rejects.toThrow('table unavailable');
    expect(notifier.listenerCount(CHANNEL)).toBe(0);
  });
});
