import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, composeSlices, defineSlice, duration, integer, setting } from '../../src/platform/config/settings.js';

function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const listener = defineSlice({
  name: 'listener',
  settings: {
    port: setting('TEST_PORT', integer(0, 65535).default(8080).describe('Port.')),
  },
});

const window = defineSlice({
  name: 'window',
  settings: {
    idleTtl: setting('TEST_IDLE_TTL', duration(1, 86400).default(60).describe('Idle lifetime.')),
    absoluteTtl: setting('TEST_ABSOLUTE_TTL', duration(1, 86400).default(600).describe('Absolute lifetime.')),
    sidePort: setting('TEST_SIDE_PORT', integer(0, 65535).optional().describe('Another port.')),
  },
  requires: [listener],
  check: (c) => [
    ...(c.idleTtl > c.absoluteTtl ? ['TEST_IDLE_TTL: must not exceed TEST_ABSOLUTE_TTL'] : []),
    ...(c.sidePort !== undefined && c.sidePort === c.port ? ['TEST_SIDE_PORT: must differ from TEST_PORT'] : []),
  ],
});

describe('configuration slices', () => {
  it('infers the values from the schemas and reports a cross-field check as one exact line', () => {
    const config = composeSlices([listener, window]);
    const values = config.load({});
    expectTypeOf(values).toEqualTypeOf<{ port: number } & { idleTtl: number; absoluteTtl: number; sidePort: number | undefined }>();
    expect(values).toEqual({ port: 8080, idleTtl: 60, absoluteTtl: 600, sidePort: undefined });
    expect(problems(() => config.load({ TEST_IDLE_TTL: '1h', TEST_ABSOLUTE_TTL: '10m' }))).toEqual([
      'TEST_IDLE_TTL: must not exceed TEST_ABSOLUTE_TTL',
    ]);
    // A check reads the values of a slice it requires.
    expect(problems(() => config.load({ TEST_PORT: '9000', TEST_SIDE_PORT: '9000' }))).toEqual([
      'TEST_SIDE_PORT: must differ from TEST_PORT',
    ]);
    // Parse problems come first and alone: checks run only on a configuration that parsed.
    expect(problems(() => config.load({ TEST_IDLE_TTL: 'soon', TEST_ABSOLUTE_TTL: '10s' }))).toEqual([
      'TEST_IDLE_TTL: must be a duration such as 600, 90s, 10m, 12h or 30d (got "soon")',
    ]);
  });

  it('shapes values with finish, and documents each variable with its default', () => {
    const shaped = defineSlice({
      name: 'shaped',
      settings: {
        costMemory: setting('TEST_COST_MEMORY', integer(1, 100).default(19).describe('Memory.')),
        costTime: setting('TEST_COST_TIME', integer(1, 100).default(2).describe('Time.')),
        label: setting('TEST_LABEL', z.string().optional().describe('Label.')),
      },
      finish: ({ costMemory, costTime, ...values }) => ({ ...values, cost: { memory: costMemory, time: costTime } }),
    });
    const config = composeSlices([shaped]);
    const values = config.load({ TEST_COST_TIME: '3' });
    expectTypeOf(values).toEqualTypeOf<{ label: string | undefined; cost: { memory: number; time: number } }>();
    expect(values).toEqual({ label: undefined, cost: { memory: 19, time: 3 } });
    expect(config.documentation()).toEqual([
      { name: 'TEST_COST_MEMORY', default: '19', description: 'Memory.' },
      { name: 'TEST_COST_TIME', default: '2', description: 'Time.' },
      { name: 'TEST_LABEL', default: '', description: 'Label.' },
    ]);
  });

  it('refuses two slices declaring the same environment variable or the same key', () => {
    const samePort = defineSlice({
      name: 'same-port',
      settings: { otherPort: setting('TEST_PORT', integer(0, 65535).default(1).describe('Port again.')) },
    });
    const sameKey = defineSlice({
      name: 'same-key',
      settings: { port: setting('TEST_OTHER_PORT', integer(0, 65535).default(1).describe('Port again.')) },
    });
    expect(() => composeSlices([listener, samePort])).toThrow('environment variable TEST_PORT is declared by both listener and same-port');
    expect(() => composeSlices([listener, sameKey])).toThrow('configuration key port is declared by both listener and same-key');
  });

  it('refuses a slice listed before a slice its check reads', () => {
    expect(() => composeSlices([window, listener])).toThrow('configuration slice window requires listener, which must be listed before it');
  });
});
