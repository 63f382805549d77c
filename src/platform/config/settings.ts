import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Configuration slices: each part of Latchkey declares the environment variables it reads beside
 * the code they configure. A setting is its camelCase key, its environment variable and one zod
 * schema (parser, default and `.describe()` text, which the README table shows); the type of a
 * slice's values is inferred from those schemas. A slice may shape its values once parsed
 * (`finish`) and check settings against each other (`check`, one problem line each). The
 * composition root lists every slice once (src/server/config.ts) and gets `loadConfig` and
 * `configDocumentation` from `composeSlices`.
 */

/** Durations are written as seconds ("600") or with a unit: 30s, 10m, 12h, 30d. */
const DURATION = /^(\d+)\s*(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseDurationSeconds(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']!;
}

/** A duration in seconds, between min and max inclusive. */
export const duration = (min: number, max: number) =>
  z
    .string()
    .transform((text, ctx) => {
      const seconds = parseDurationSeconds(text);
      if (seconds === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be a duration such as 600, 90s, 10m, 12h or 30d (got "${text}")` });
        return z.NEVER;
      }
      if (seconds < min || seconds > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min}s and ${max}s (got ${seconds}s)` });
        return z.NEVER;
      }
      return seconds;
    });

export const integer = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max} (got "${text}")` });
      return z.NEVER;
    }
    return n;
  });

export const boolean = z.enum(['true', 'false', '1', '0', 'yes', 'no'], {
  error: (issue) => `must be true or false (got "${String(issue.input)}")`,
}).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list of bearer credentials, each at least 32 characters. */
export const credentialList = z.string().transform((text, ctx) => {
  const values = text.split(',').map((v) => v.trim()).filter(Boolean);
  if (values.length === 0 || values.some((v) => v.length < 32)) {
    ctx.addIssue({ code: 'custom', message: 'must be one or more comma-separated values of at least 32 characters (e.g. `openssl rand -base64 32`)' });
    return z.NEVER;
  }
  return values;
});

/** Unset: no credentials (the feature they open stays off). */
export const optionalCredentialList = credentialList.optional().transform((values) => values ?? []);

/** A credential's name in a named list (`name:secret`): short, log- and label-safe. */
const CREDENTIAL_NAME = /^([a-z0-9][a-z0-9_.-]{0,39}):(.+)$/;

/**
 * A comma-separated list of named credentials, `name:secret` (each secret at least 32
 * characters), so that what a credential did can be told apart by its name. A bare secret is
 * accepted too and named `token-<first 8 hex of its SHA-256>`. Unset: none.
 */
export const optionalNamedCredentialList = z.string().optional().transform((text, ctx) => {
  if (text === undefined) return [];
  const entries = text.split(',').map((v) => v.trim()).filter(Boolean);
  const credentials = entries.map((entry) => {
    const named = CREDENTIAL_NAME.exec(entry);
    const secret = named ? named[2]! : entry;
    const name = named ? named[1]! : `token-${createHash('sha256').update(secret).digest('hex').slice(0, 8)}`;
    return { name, secret };
  });
  if (credentials.length === 0 || credentials.some((c) => c.secret.length < 32)) {
    ctx.addIssue({ code: 'custom', message: 'must be one or more comma-separated name:secret entries (name: a-z 0-9 _ . -, up to 40; secret at least 32 characters, e.g. `ops:$(openssl rand -base64 32)`)' });
    return z.NEVER;
  }
  const names = credentials.map((c) => c.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    ctx.addIssue({ code: 'custom', message: `names each credential once (${twice} is there twice)` });
    return z.NEVER;
  }
  // One secret under two names would make the audit trail name the wrong one.
  const secrets = credentials.map((c) => c.secret);
  const shared = credentials.find((c, i) => secrets.indexOf(c.secret) !== i);
  if (shared !== undefined) {
    ctx.addIssue({ code: 'custom', message: `gives each credential its own secret (${shared.name} repeats another's)` });
    return z.NEVER;
  }
  return credentials;
});

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** One setting: the environment variable and its schema (parser, default, description). */
export interface Setting<S extends z.ZodType = z.ZodType> {
  env: string;
  schema: S;
}

export function setting<S extends z.ZodType>(env: string, schema: S): Setting<S> {
  return { env, schema };
}

/** A slice's settings by camelCase key. */
export type Settings = Record<string, Setting>;

/** The parsed values of some settings, inferred from their schemas. */
export type SettingValues<S extends Settings> = { -readonly [K in keyof S]: z.output<S[K]['schema']> };

export interface Slice<V = unknown> {
  readonly name: string;
  readonly settings: Settings;
  /** Slices whose values `check` reads; they must come earlier in the composed list. */
  readonly requires: readonly Slice<unknown>[];
  readonly finish: (values: Record<string, unknown>) => V;
  readonly check: ((config: never) => string[]) | undefined;
  /** Type only: the slice's values. */
  readonly values?: V;
}

/** The values a slice contributes to the configuration. */
export type SliceValues<T> = T extends Slice<infer V> ? V : never;

/** The values of every slice of a list, as one object type. */
export type ComposedValues<L extends readonly unknown[]> =
  L extends readonly [infer Head, ...infer Tail] ? SliceValues<Head> & ComposedValues<Tail> : unknown;

/**
 * Declares a slice. `finish` turns the parsed values into what the rest of the code reads
 * (default: as parsed); `check` sees them together with the values of `requires`, and returns
 * one problem line per violated rule, naming the variable first ("NAME: must …").
 */
export function defineSlice<
  const S extends Settings,
  V = SettingValues<S>,
  const R extends readonly Slice<unknown>[] = [],
>(spec: {
  name: string;
  settings: S;
  requires?: R;
  finish?: (values: SettingValues<S>) => V;
  check?: (config: V & ComposedValues<R>) => string[];
}): Slice<V> {
  const finish = spec.finish ?? ((values: SettingValues<S>) => values as unknown as V);
  return {
    name: spec.name,
    settings: spec.settings,
    requires: spec.requires ?? [],
    finish: (values) => finish(values as SettingValues<S>),
    check: spec.check as ((config: never) => string[]) | undefined,
  };
}

export interface ConfigDocumentationRow {
  name: string;
  default: string;
  description: string;
}

export interface ComposedConfig<C> {
  /** Reads the configuration from an environment; throws ConfigError listing every problem, one per line. */
  load(env?: Record<string, string | undefined>): C;
  /** The documentation rows, one per variable, in the order of the slices. */
  documentation(): ConfigDocumentationRow[];
}

/**
 * Composes slices into one configuration. Throws at once if two slices declare the same
 * environment variable or the same key, or a slice requires one listed after it (or not at all).
 */
export function composeSlices<const L extends readonly Slice<unknown>[]>(slices: L): ComposedConfig<ComposedValues<L>> {
  const keyOwner = new Map<string, string>();
  const envOwner = new Map<string, string>();
  const shape: Record<string, z.ZodType> = {};
  const seen = new Set<Slice<unknown>>();
  for (const slice of slices) {
    for (const required of slice.requires) {
      if (!seen.has(required)) {
        throw new Error(`configuration slice ${slice.name} requires ${required.name}, which must be listed before it`);
      }
    }
    for (const [key, { env, schema }] of Object.entries(slice.settings)) {
      const keyClash = keyOwner.get(key);
      if (keyClash !== undefined) throw new Error(`configuration key ${key} is declared by both ${keyClash} and ${slice.name}`);
      const envClash = envOwner.get(env);
      if (envClash !== undefined) throw new Error(`environment variable ${env} is declared by both ${envClash} and ${slice.name}`);
      keyOwner.set(key, slice.name);
      envOwner.set(env, slice.name);
      shape[env] = schema;
    }
    seen.add(slice);
  }
  const schema = z.object(shape);

  return {
    load(env = process.env) {
      const input: Record<string, string> = {};
      for (const name of envOwner.keys()) {
        const value = env[name];
        if (value !== undefined && value !== '') input[name] = value;
      }
      const parsed = schema.safeParse(input);
      if (!parsed.success) {
        throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`));
      }
      const config: Record<string, unknown> = {};
      for (const slice of slices) {
        const values: Record<string, unknown> = {};
        for (const [key, { env: name }] of Object.entries(slice.settings)) values[key] = parsed.data[name];
        const finished = slice.finish(values) as Record<string, unknown>;
        for (const key of Object.keys(finished)) {
          if (key in config) throw new Error(`configuration key ${key} is produced by two slices (the second: ${slice.name})`);
        }
        Object.assign(config, finished);
      }
      const problems = slices.flatMap((slice) => slice.check?.(config as never) ?? []);
      if (problems.length > 0) throw new ConfigError(problems);
      return config as ComposedValues<L>;
    },
    documentation() {
      return Object.entries(shape).map(([name, field]) => {
        const def = (field as unknown as { def?: { defaultValue?: unknown } }).def?.defaultValue;
        return {
          name,
          default: def === undefined ? '' : String(def),
          description: field.description ?? '',
        };
      });
    },
  };
}
