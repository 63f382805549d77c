import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/platform/db/database.js';
import { openTestStore } from '../support/store.js';

describe('cross-instance notifications (LISTEN/NOTIFY)', () => {
  let store: Store;
  beforeAll(async () => { store = await openTestStore(); });
  afterAll(async () => { await store.close(); });

  it('delivers a payload to a listener, and not after it unsubscribes', async () => {
    const received: string[] = [];
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => { resolveFirst = r; });
    const unlisten = await store.notifier.listen('clients', (payload) => { received.push(payload); resolveFirst(); });
    await store.notifier.notify('clients', 'client-a');
    await first;
    expect(received).toEqual(['client-a']);
    await unlisten();
    await store.notifier.notify('clients', 'client-b');
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toEqual(['client-a']);
  });
});
