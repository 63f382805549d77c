import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured, sharedStoreForCli } from '../support/cli.js';

const cli = (...args: string[]) => runCliCaptured(['issuers', ...args]);

describe('latchkey issuers', () => {
  const shared = sharedStoreForCli('latchkey-cli-issuers-');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-issuer-files-'));
  const file = (name: string, body: unknown) => { const path = join(dir, name); writeFileSync(path, JSON.stringify(body)); return path; };
  let declaration: Record<string, unknown>;

  beforeAll(async () => {
    shared.setUp();
    declaration = {
      name: 'k8s-prod', issuer: 'https://k8s.example.com', audiences: ['https://latchkey.example.com'],
      jwks: { keys: [await exportJWK((await generateKeyPair('ES256')).publicKey)] },
      subject_mappings: [{ match: { sub: 'system:serviceaccount:payments:*' }, client_id: 'payments-api' }],
    };
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await shared.tearDown();
  });

  it('has --help naming every subcommand', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    for (const sub of ['list', 'show', 'add', 'update', 'disable', 'enable', 'remove']) expect(stdout).toContain(`  ${sub}`);
  });

  it('adds, lists, shows, updates, disables, enables and removes an issuer', async () => {
    const added = await cli('add', '--file', file('k8s.json', declaration));
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'k8s-prod', issuer: 'https://k8s.example.com', max_token_age: 3600, disabled: false });
    const listed = await cli('list', '--json');
    expect(JSON.parse(listed.stdout).map((i: { name: string }) => i.name)).toEqual(['k8s-prod']);
    const shown = JSON.parse((await cli('show', 'k8s-prod')).stdout);
    // show's output, edited, is an update's input.
    const updated = await cli('update', 'k8s-prod', '--file', file('k8s-2.json', { ...shown, max_token_age: 600 }));
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout).max_token_age).toBe(600);
    expect(JSON.parse((await cli('disable', 'k8s-prod')).stdout).disabled).toBe(true);
    expect(JSON.parse((await cli('enable', 'k8s-prod')).stdout).disabled).toBe(false);

    // A server on the same store trusts it.
    const app = await shared.open();
    try {
      expect(app.services.externalTokens.trusts('https://k8s.example.com')).toBe(true);
    } finally {
      await app.close();
    }

    expect((await cli('remove', 'k8s-prod')).code).toBe(2);
    const removed = await cli('remove', 'k8s-prod', '--yes');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe('removed k8s-prod\n');
    expect(JSON.parse((await cli('list')).stdout)).toEqual([]);
  });

  it('refuses a bad declaration, an unknown name and misuse with exit code 2', async () => {
    const bad = await cli('add', '--file', file('bad.json', { ...declaration, jwks: undefined }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid_request');
    const missing = await cli('show', 'nope');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('not_found');
    expect((await cli('show')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('add', '--file', join(dir, 'absent.json'))).code).toBe(2);
    expect((await cli('show', 'x', '--json')).code).toBe(2);
  });
});
