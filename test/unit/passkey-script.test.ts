import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PASSKEY_SCRIPT, PASSKEY_SCRIPT_HASH } from '../../src/capabilities/mfa/passkey-script.js';

const bytes = (...b: number[]) => new Uint8Array(b).buffer;
const b64u = (b: ArrayBuffer) => Buffer.from(b).toString('base64url');

/** Just enough of a page around one form for the script: fetch, navigator.credentials and the DOM it touches. */
function page(opts: { mode: 'get' | 'create'; autofill?: boolean; conditional?: boolean; answers: unknown[]; credential: () => Promise<unknown> }) {
  const posts: { url: string; init: RequestInit; body: Record<string, unknown> }[] = [];
  const calls: { kind: string; options: any }[] = [];
  const assigned: string[] = [];
  const box = { attrs: {} as Record<string, string>, hidden: true, textContent: '', setAttribute(n: string, v: string) { this.attrs[n] = v; }, hasAttribute: () => true };
  let onSubmit: (e: { preventDefault(): void }) => void = () => {};
  const attributes: Record<string, string> = { 'data-passkey': opts.mode, ...(opts.autofill ? { 'data-autofill': '' } : {}) };
  const form = {
    dataset: { passkey: opts.mode, options: '/options', verify: '/verify' },
    fields: [['username', 'alice'], ['return_to', '/authorize?x=1']],
    hasAttribute: (n: string) => n in attributes,
    addEventListener: (_: string, f: typeof onSubmit) => { onSubmit = f; },
    querySelector: () => box,
    nextElementSibling: null,
  };
  const answers = [...opts.answers];
  const globals = {
    window: { PublicKeyCredential: {}, location: { assign: (l: string) => assigned.push(l) } },
    document: { readyState: 'complete', querySelectorAll: () => [form] },
    navigator: {
      credentials: {
        get: (o: unknown) => { calls.push({ kind: 'get', options: o }); return opts.credential(); },
        create: (o: unknown) => { calls.push({ kind: 'create', options: o }); return opts.credential(); },
      },
    },
    PublicKeyCredential: { isConditionalMediationAvailable: async () => opts.conditional ?? false },
    FormData: class { constructor(private f: typeof form) {} forEach(cb: (v: string, k: string) => void) { for (const [k, v] of this.f.fields) cb(v!, k!); } },
    fetch: async (url: string, init: RequestInit) => {
      posts.push({ url, init, body: JSON.parse(init.body as string) });
      return { json: async () => answers.shift() };
    },
  };
  new Function(...Object.keys(globals), PASSKEY_SCRIPT)(...Object.values(globals));
  const settle = async () => { for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0)); };
  return { posts, calls, assigned, box, settle, submit: () => onSubmit({ preventDefault() {} }) };
}

describe('the passkey script', () => {
  it('is allowed by its CSP hash (CSP Level 3 §2.3.1)', () => {
    expect(PASSKEY_SCRIPT_HASH).toBe(`'sha256-${createHash('sha256').update(PASSKEY_SCRIPT, 'utf8').digest('base64')}'`);
  });

  it('parses as a plain script', () => {
    expect(() => new Function(PASSKEY_SCRIPT)).not.toThrow();
  });

  it('signs in: fields to the options URL, the assertion as AuthenticationResponseJSON to the verify URL, then follows location', async () => {
    const p = page({
      mode: 'get',
      answers: [{ challenge: 'AQID', rpId: 'id.example.com', allowCredentials: [{ id: 'BAU', type: 'public-key' }] }, { location: '/done' }],
      credential: async () => ({
        id: 'BAU', rawId: bytes(4, 5), type: 'public-key', authenticatorAttachment: null,
        getClientExtensionResults: () => ({}),
        response: { clientDataJSON: bytes(1), authenticatorData: bytes(2), signature: bytes(3), userHandle: bytes(255) },
      }),
    });
    p.submit();
    await p.settle();
    expect(p.posts[0]).toMatchObject({ url: '/options', init: { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' } }, body: { username: 'alice', return_to: '/authorize?x=1' } });
    const publicKey = p.calls[0]!.options.publicKey;
    expect(b64u(publicKey.challenge)).toBe('AQID');
    expect(b64u(publicKey.allowCredentials[0].id)).toBe('BAU');
    expect(p.calls[0]!.options.mediation).toBeUndefined();
    expect(p.posts[1]).toEqual(expect.objectContaining({ url: '/verify', body: {
      username: 'alice', return_to: '/authorize?x=1',
      response: { id: 'BAU', rawId: 'BAU', type: 'public-key', clientExtensionResults: {}, response: { clientDataJSON: 'AQ', authenticatorData: 'Ag', signature: 'Aw', userHandle: '_w' } },
    } }));
    expect(p.assigned).toEqual(['/done']);
  });

  it('registers: converts user.id and excludeCredentials, sends attestationObject and transports', async () => {
    const p = page({
      mode: 'create',
      answers: [{ challenge: 'AQID', user: { id: 'YWxpY2U', name: 'alice', displayName: 'alice' }, excludeCredentials: [{ id: 'BAU', type: 'public-key' }] }, { location: '/account' }],
      credential: async () => ({
        id: 'Bg', rawId: bytes(6), type: 'public-key', authenticatorAttachment: 'platform', getClientExtensionResults: () => ({}),
        response: { clientDataJSON: bytes(1), attestationObject: bytes(7), getTransports: () => ['internal'] },
      }),
    });
    p.submit();
    await p.settle();
    const publicKey = p.calls[0]!.options.publicKey;
    expect(p.calls[0]!.kind).toBe('create');
    expect(Buffer.from(publicKey.user.id).toString()).toBe('alice');
    expect(b64u(publicKey.excludeCredentials[0].id)).toBe('BAU');
    expect(p.posts[1]!.body.response).toEqual({ id: 'Bg', rawId: 'Bg', type: 'public-key', authenticatorAttachment: 'platform', clientExtensionResults: {}, response: { clientDataJSON: 'AQ', attestationObject: 'Bw', transports: ['internal'] } });
    expect(p.assigned).toEqual(['/account']);
  });

  it('shows a cancelled ceremony, and the server\'s error_description, as an alert', async () => {
    const cancelled = page({ mode: 'get', answers: [{ challenge: 'AQID' }], credential: async () => { throw Object.assign(new Error('no'), { name: 'NotAllowedError' }); } });
    cancelled.submit();
    await cancelled.settle();
    expect(cancelled.box).toMatchObject({ hidden: false, textContent: 'The passkey request was cancelled or timed out.', attrs: { role: 'alert' } });

    const refused = page({
      mode: 'get', answers: [{ challenge: 'AQID' }, { error: 'access_denied', error_description: 'That passkey is not registered here.' }],
      credential: async () => ({ id: 'AQ', rawId: bytes(1), type: 'public-key', response: { clientDataJSON: bytes(1), authenticatorData: bytes(2), signature: bytes(3), userHandle: null } }),
    });
    refused.submit();
    await refused.settle();
    expect(refused.box.textContent).toBe('That passkey is not registered here.');
    expect(refused.assigned).toEqual([]);
  });

  it('offers passkeys in autofill (conditional mediation) and aborts that request when the form is submitted', async () => {
    const never = () => new Promise(() => {});
    const p = page({ mode: 'get', autofill: true, conditional: true, answers: [{ challenge: 'AQID' }, { challenge: 'BAUG' }], credential: never });
    await p.settle();
    expect(p.calls[0]!.options.mediation).toBe('conditional');
    const signal: AbortSignal = p.calls[0]!.options.signal;
    expect(signal.aborted).toBe(false);
    p.submit();
    await p.settle();
    expect(signal.aborted).toBe(true);
    expect(p.calls[1]!.options.mediation).toBeUndefined();
    expect(b64u(p.calls[1]!.options.publicKey.challenge)).toBe('BAUG');
  });
});
