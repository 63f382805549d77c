import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withCliStore } from '../../src/cli/store.js';
import { describeClient } from '../../src/oauth/clients/registry.js';
import { ClientRepository } from '../../src/oauth/clients/store.js';
import { loadConfig } from '../../src/server/config.js';
import { parseClientMetadata } from '../support/clients.js';
import { spawnLatchkey, storeEnv } from '../support/process.js';
import { dropSchema, onPostgres, uniqueSchema } from '../support/store.js';

/** Everything a stream delivers from now on. */
function collect(stream: Readable): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks).toString('utf8');
}

describe('latchkey output through a pipe (issue #19.5)', { timeout: 60_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-output-'));
  const schema = uniqueSchema();
  const env = { ...storeEnv(dataDir, schema), LOG_LEVEL: 'silent' };
  const clients = 2000;
  /** What `latchkey clients list` must print: one JSON document, well over the 64 KiB a pipe holds. */
  let expected = '';

  beforeAll(async () => {
    // The store the CLI opens, filled in one statement: a client's metadata cloned `clients` times.
    expected = await withCliStore(loadConfig(env), async (store) => {
      const metadata = parseClientMetadata({
        client_name: 'Reporting dashboard', grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['https://reports.example.com/callback'], scope: 'openid profile email reports:read',
      });
      await sql`insert into clients (client_id, client_type, token_endpoint_auth_method, metadata, secret_hash, source)
        select 'app-' || lpad(i::text, 4, '0'), 'confidential', 'client_secret_basic', ${JSON.stringify(metadata)}::jsonb, 'not-a-real-hash', 'cli'
        from generate_series(1, ${clients}::int) as i`.execute(store.db);
      const listed = await new ClientRepository(store.db, store.notifier).list();
      return `${JSON.stringify(listed.map(describeClient), null, 2)}\n`;
    });
    expect(Buffer.byteLength(expected)).toBeGreaterThan(1_000_000);
  });

  afterAll(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    if (onPostgres) await dropSchema(schema);
  });

  it('hands every byte to a slow reader before it exits 0 (`latchkey clients list | cat`)', async () => {
    const child = spawnLatchkey(['clients', 'list'], env);
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Nothing reads for a second: the pipe fills and the rest waits in the CLI's process.
    await sleep(1000);
    const stdout = collect(child.stdout!);
    const stderr = collect(child.stderr!);
    expect(await closed).toBe(0);
    expect(stderr()).toBe('');
    expect(Buffer.byteLength(stdout())).toBe(Buffer.byteLength(expected));
    expect(stdout() === expected).toBe(true);
    expect((JSON.parse(stdout()) as unknown[]).length).toBe(clients);
  });

  it('stops quietly with exit code 141 when the reader goes away (`latchkey clients list | head -1`)', async () => {
    const child = spawnLatchkey(['clients', 'list'], env);
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const stderr = collect(child.stderr!);
    const first = await new Promise<string>((resolve) => child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8'))));
    child.stdout!.destroy(); // the reader exits: the CLI's next write fails with EPIPE
    expect(first.startsWith('[\n  {\n    "client_id": "app-0001",\n')).toBe(true);
    expect(await closed).toBe(141);
    expect(stderr()).toBe('');
  });
});
