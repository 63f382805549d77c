import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createApp, type App, type AppOptions } from '../../src/server/app.js';
import { loadConfig, type Config } from '../../src/server/config.js';
import { createLogger } from '../../src/platform/observability/logger.js';
import { openTestStore } from './store.js';

/** Log lines captured in memory, parsed, for tests that assert on what was (not) logged. */
export class LogCapture {
  readonly raw: string[] = [];
  readonly logger: Logger;
  constructor(level: Config['logLevel'] = 'info') {
    const raw = this.raw;
    this.logger = createLogger(level, new Writable({
      write(chunk, _enc, done) { raw.push(String(chunk)); done(); },
    }));
  }
  get lines(): Array<Record<string, unknown>> {
    return this.raw.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  text(): string {
    return this.raw.join('');
  }
}

export function testConfig(env: Record<string, string> = {}): Config {
  // DEMO off: a test store starts empty unless the test asks for the demo data.
  return loadConfig({ ISSUER: 'http://localhost:8080', LOG_LEVEL: 'silent', DEMO: 'false', ...env });
}

export interface TestApp extends App {
  logs: LogCapture;
}

/** A whole server on an isolated store, for `server.inject` or `server.listen({ port: 0 })`. */
export async function createTestApp(env: Record<string, string> = {}, options: AppOptions = {}): Promise<TestApp> {
  const config = testConfig(env);
  const logs = new LogCapture('info');
  const store = options.store ?? await openTestStore();
  const app = await createApp(config, { logger: logs.logger, ...options, store });
  return {
    ...app,
    logs,
    async close() {
      await app.close();
      if (!options.store) await store.close();
    },
  };
}
