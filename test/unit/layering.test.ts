import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering of ../shared/ARCHITECTURE.md, read off the imports of src/: server → capability →
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

const IMPORT = /^\s*(import|export)\s+(type\s+)?([^'";]*?\bfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** Every import of every file under src/, as paths relative to the repository (packages as their names). */
function imports(): Import[] {
  return sourceFiles(src).flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    const found: Import[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const specifier = m[4] ?? m[5]!;
      // `import type {…}` and `import { type A, type B }` are erased: they cannot make a runtime cycle.
      const names = m[3] ?? '';
      const typeOnly = m[2] !== undefined || (/^\{[^}]*\}\s*from\s+$/.test(names) && names.slice(1, names.indexOf('}')).split(',').every((n) => /^\s*type\s/.test(n) || n.trim() === ''));
      const to = specifier.startsWith('.')
        ? relative(root, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts')
        : specifier;
      found.push({ from: relative(root, file), to, typeOnly });
    }
    return found;
  });
}

const all = imports();
const layerOf = (path: string) => path.split('/').slice(0, 2).join('/');
const isFastify = (to: string) => to === 'fastify' || to.startsWith('@fastify/');

describe('layering (../shared/ARCHITECTURE.md)', () => {
  it('reads the imports of every source file', () => {
    // The parser sees the files it is meant to judge (a broken pattern would pass every rule below).
    expect(all.some((i) => i.from === 'src/server/app.ts' && i.to === 'src/server/capabilities.ts')).toBe(true);
    expect(all.some((i) => i.from === 'src/capabilities/login/routes.ts' && i.to === 'fastify' && i.typeOnly)).toBe(true);
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
