import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readRunbook, runbookFiles, RUNBOOKS_DIR } from '../support/runbooks.js';

/**
 * docs/runbooks/ against what links to it and what runs it: every alert's runbook_url names a
 * runbook that exists, every runbook's marked steps are well-formed bash using only variables it
 * documents, and each step is run by test/e2e/runbooks.test.ts.
 */

const root = new URL('../../', import.meta.url).pathname;
const BASE = 'https://github.com/OWNER/latchkey/blob/main/docs/runbooks/';
const EXPECTED = ['bad-key-rotation.md', 'compromised-account.md', 'leaked-client-secret.md', 'leaked-signing-key.md', 'outage.md', 'slo-burn.md', 'stolen-refresh-token.md'];
/** Set by the operator for every runbook (docs/runbooks/README.md). */
const COMMON = ['LATCHKEY_URL', 'LATCHKEY_ADMIN_TOKEN', 'LATCHKEY_METRICS_TOKEN', 'LATCHKEY_METRICS_URL', 'INCIDENT'];

interface Rule { alert?: string; record?: string; annotations?: Record<string, string> }
const alerts = (parse(readFileSync(join(root, 'deploy/prometheus-alerts.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> })
  .groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

/** The step names each runbook's e2e test runs: `new Runbook('file', …)` then its `.run('step'` calls, up to the next runbook. */
function stepsRunByE2e(): Map<string, Set<string>> {
  const source = readFileSync(join(root, 'test/e2e/runbooks.test.ts'), 'utf8');
  const runs = new Map<string, Set<string>>();
  for (const segment of source.split(/new Runbook\(/).slice(1)) {
    const file = /^'([^']+)'/.exec(segment)?.[1];
    if (!file) continue;
    const names = runs.get(file) ?? new Set<string>();
    for (const m of segment.matchAll(/\.run\('([a-z0-9-]+)'/g)) names.add(m[1]!);
    runs.set(file, names);
  }
  return runs;
}

describe('runbooks', () => {
  it('are exactly the seven incidents, each in the index', () => {
    expect(runbookFiles()).toEqual(EXPECTED);
    const index = readFileSync(join(RUNBOOKS_DIR, 'README.md'), 'utf8');
    for (const f of EXPECTED) expect(index).toContain(`](${f})`);
  });

  it('every alert has a runbook_url naming an existing runbook, and the runbook names the alert', () => {
    expect(alerts.length).toBeGreaterThan(0);
    for (const rule of alerts) {
      const url = rule.annotations?.runbook_url;
      expect(url, rule.alert).toMatch(/^https:\/\/github\.com\/OWNER\/latchkey\/blob\/main\/docs\/runbooks\/[a-z-]+\.md$/);
      const file = url!.slice(BASE.length);
      expect(existsSync(join(RUNBOOKS_DIR, file)), `${rule.alert} → ${file}`).toBe(true);
      expect(readFileSync(join(RUNBOOKS_DIR, file), 'utf8'), `${file} should name ${rule.alert}`).toContain(rule.alert!);
    }
    // And every runbook is where some alert leads.
    expect([...new Set(alerts.map((r) => r.annotations!.runbook_url!.slice(BASE.length)))].sort()).toEqual(EXPECTED);
  });

  for (const file of EXPECTED) {
    describe(file, () => {
      const { text, steps } = readRunbook(file);

      it('has marked steps with unique names, each valid bash', () => {
        expect(steps.length).toBeGreaterThan(0);
        expect(new Set(steps.map((s) => s.name)).size).toBe(steps.length);
        // Every marker is followed by its sh block (a marker the parser skipped would be a step never run).
        expect((text.match(/<!-- step: /g) ?? []).length).toBe(steps.length);
        for (const s of steps) execFileSync('bash', ['-n', '-c', s.script]);
      });

      it('uses only the variables it documents or a previous step sets', () => {
        const documented = new Set([...COMMON, ...[...text.matchAll(/^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]]).filter((v): v is string => v !== undefined)]);
        const set = new Set<string>();
        for (const s of steps) {
          // $VAR and ${VAR…} outside single-quoted jq programs (jq's own $names are lower case).
          for (const m of s.script.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)/g)) {
            expect(documented.has(m[1]!) || set.has(m[1]!), `${file} step ${s.name} uses $${m[1]} which is neither documented nor set before`).toBe(true);
          }
          if (s.sets) {
            expect(documented.has(s.sets), `${file}: ${s.sets} (set by ${s.name}) should be in the Values table`).toBe(true);
            set.add(s.sets);
          }
        }
      });

      it('every step is run by test/e2e/runbooks.test.ts', () => {
        const ran = stepsRunByE2e().get(file) ?? new Set<string>();
        expect(steps.map((s) => s.name).filter((n) => !ran.has(n))).toEqual([]);
      });
    });
  }
});

describe('runbook steps keep credentials off command lines', () => {
  // A variable holding a credential, a password or a token, as a step would expand it.
  const SECRET = /\$\{?(LATCHKEY_ADMIN_TOKEN|LATCHKEY_METRICS_TOKEN|\w*SECRET\w*|\w*PASSWORD\w*|TOKEN)\b/g;
  it('expands a secret only as an argument of the printf builtin (into a pipe or a process substitution), never of curl or jq, whose arguments any local user can read in /proc', () => {
    const leaks: string[] = [];
    for (const file of runbookFiles()) {
      for (const step of readRunbook(file).steps) {
        for (const line of step.script.split('\n')) {
          for (const m of line.matchAll(SECRET)) {
            const before = line.slice(0, m.index);
            const printf = before.lastIndexOf('printf ');
            // The expansion must belong to that printf: no pipe or closing parenthesis between them.
            if (printf < 0 || /[|)]/.test(before.slice(printf))) leaks.push(`${file} ${step.name}: ${line.trim()}`);
          }
        }
      }
    }
    expect(leaks).toEqual([]);
  });
});
