import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering of ../shared/ARCHITECTURE.md, read off the imports of src/ (and migrations/): server → capability →
 * oauth kernel / users → platform, imports pointing down only, the kernel free of Fastify, one
 * composition root, no import cycle.
 */

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');

interface Import { from: string; to: string; typeOnly: boolean }

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The source without its comments (strings and template literals kept as they are). */
function withoutComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') { while (i < text.length && text[i] !== '\n') i++; out += '\n'; continue; }
    if (c === '/' && text[i + 1] === '*') { const end = text.indexOf('*/', i + 2); i = end < 0 ? text.length : end + 1; out += ' '; continue; }
    if (c === '\'' || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
      continue;
    }
    out += c;
  }
  return out;
}

// `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`, anywhere in a file.
const IMPORT = /\b(import|export)\s+(type\s+)?(?:[\w*{}\s,$]*?\bfrom\s*)?['"`]([^'"`]+)['"`]|\bimport\(\s*['"`]([^'"`]+)['"`]\s*\)/g;

/** Every import of every file under src/ and migrations/, as paths relative to the repository (packages as their names). */
function imports(): Import[] {
  return [...sourceFiles(src), ...sourceFiles(join(root, 'migrations'))].flatMap((file) => {
    const text = withoutComments(readFileSync(file, 'utf8'));
    const found: Import[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const specifier = m[3] ?? m[4]!;
      // Only `import type` / `export type` is erased: under verbatimModuleSyntax an
      // `import { type A }` still loads its module.
      const typeOnly = m[2] !== undefined;
      const to = specifier.startsWith('.')
        ? relative(root, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts')
        : specifier;
      found.push({ from: relative(root, file), to, typeOnly });
    }
    return found;
  });
}

const all = imports();
/** The layer of a file: src/<folder>, with the entry points src/cli.ts and src/main.ts in src/cli. */
const layerOf = (path: string) => (/^src\/[\w-]+\.ts$/.test(path) ? 'src/cli' : path.split('/').slice(0, 2).join('/'));
/** The capability a file belongs to, if any. */
const capabilityOf = (path: string) => /^src\/capabilities\/([\w-]+)\//.exec(path)?.[1];
const isFastify = (to: string) => to === 'fastify' || to.startsWith('@fastify/');

describe('layering (../shared/ARCHITECTURE.md)', () => {
  it('reads the imports of every source file', () => {
    // The parser sees the files it is meant to judge (a broken pattern would pass every rule below).
    expect(all.some((i) => i.from === 'src/server/app.ts' && i.to === 'src/server/capabilities.ts')).toBe(true);
    expect(all.some((i) => i.from === 'src/capabilities/login/routes.ts' && i.to === 'fastify' && i.typeOnly)).toBe(true);
    expect(all.some((i) => i.from === 'src/capabilities/login/routes.ts' && i.to === 'src/users/sign-in.ts' && !i.typeOnly)).toBe(true);
    expect(all.some((i) => i.from === 'migrations/index.ts' && i.to === 'migrations/0001_signing_keys.ts')).toBe(true);
  });

  it('keeps Fastify out of the kernel, the platform, users and every capability file but routes.ts', () => {
    const offenders = all.filter((i) => isFastify(i.to) && (
      ['src/oauth', 'src/platform', 'src/users'].includes(layerOf(i.from)) ||
      (i.from.startsWith('src/capabilities/') && !i.from.endsWith('/routes.ts') && !i.from.endsWith('-routes.ts'))
    ));
    expect(offenders).toEqual([]);
  });

  it('lets nothing outside src/server import the app but the start command', () => {
    const offenders = all.filter((i) => i.to === 'src/server/app.ts' && !i.from.startsWith('src/server/') && i.from !== 'src/cli/start.ts');
    expect(offenders).toEqual([]);
  });

  it('keeps the platform a leaf: it imports nothing of Latchkey outside src/platform', () => {
    const offenders = all.filter((i) => i.from.startsWith('src/platform/') && i.to.startsWith('src/') && !i.to.startsWith('src/platform/'));
    expect(offenders).toEqual([]);
  });

  it('points the kernel and users down only: never at a capability, the server or the CLI', () => {
    const offenders = all.filter((i) => ['src/oauth', 'src/users'].includes(layerOf(i.from)) &&
      ['src/capabilities', 'src/server', 'src/cli'].includes(layerOf(i.to)));
    expect(offenders).toEqual([]);
  });

  it('lets a capability reach into the server only for its types (context.ts) and the shared HTTP helpers (server/http, from routes)', () => {
    const offenders = all.filter((i) => i.from.startsWith('src/capabilities/') && i.to.startsWith('src/server/') &&
      !(i.to === 'src/server/context.ts' && i.typeOnly) &&
      !(i.to === 'src/server/services.ts' && i.typeOnly) &&
      !(i.to.startsWith('src/server/http/') && (i.from.endsWith('routes.ts'))));
    expect(offenders).toEqual([]);
  });

  it('keeps each capability to itself: no capability imports another', () => {
    const offenders = all.filter((i) => capabilityOf(i.from) !== undefined && capabilityOf(i.to) !== undefined && capabilityOf(i.from) !== capabilityOf(i.to));
    expect(offenders).toEqual([]);
  });

  it('lets a migration import only kysely and the Migration type (a released migration never changes with the code)', () => {
    const offenders = all.filter((i) => i.from.startsWith('migrations/') && i.to !== 'kysely' && !i.to.startsWith('migrations/') &&
      !(i.to === 'src/platform/db/migrator.ts' && i.typeOnly));
    expect(offenders).toEqual([]);
  });

  it('has no import cycle', () => {
    const graph = new Map<string, string[]>();
    for (const i of all) if (i.to.startsWith('src/')) graph.set(i.from, [...(graph.get(i.from) ?? []), i.to]);
    const cycles: string[][] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (node: string) => {
      state.set(node, 'open');
      stack.push(node);
      for (const next of graph.get(node) ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(node, 'done');
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node);
    expect(cycles).toEqual([]);
  });
});
