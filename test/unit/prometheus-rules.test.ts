import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * deploy/: Prometheus's own tool checks the rule files and runs their unit tests
 * (deploy/tests/*.yml fire every alert from synthetic series). Debian's `prometheus` package
 * provides promtool; .ci/run installs it and sets LATCHKEY_REQUIRE_PROMTOOL, so in CI this runs.
 */
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const required = process.env.LATCHKEY_REQUIRE_PROMTOOL === '1';
if (!promtool && !required) console.warn('test/unit/prometheus-rules.test.ts: SKIPPED — promtool is not installed (apt-get install prometheus); .ci/run installs it');

describe('deploy/ rules under promtool', () => {
  it('promtool is installed where CI requires it', () => {
    if (required) expect(promtool, 'LATCHKEY_REQUIRE_PROMTOOL=1 but promtool is not on PATH').toBe(true);
  });

  it.skipIf(!promtool)('promtool check rules: both rule files are valid', () => {
    const out = execFileSync('promtool', ['check', 'rules', 'deploy/prometheus-rules.yml', 'deploy/prometheus-alerts.yml'], { encoding: 'utf8' });
    expect(out).toMatch(/prometheus-rules\.yml\n\s+SUCCESS: 42 rules found/);
    expect(out).toMatch(/prometheus-alerts\.yml\n\s+SUCCESS: 25 rules found/);
  });

  it.skipIf(!promtool)('promtool test rules: every unit test in deploy/tests passes', () => {
    const files = readdirSync('deploy/tests').filter((f) => f.endsWith('.yml')).sort();
    expect(files).toEqual(['alerts.test.yml', 'slo.test.yml', 'spike.test.yml']);
    const run = spawnSync('promtool', ['test', 'rules', ...files], { cwd: 'deploy/tests', encoding: 'utf8' });
    expect(run.stdout + run.stderr, 'promtool test rules').not.toMatch(/FAILED/);
    expect(run.status).toBe(0);
    expect(run.stdout.match(/SUCCESS/g)).toHaveLength(3);
  }, 60_000);

  it.skipIf(!promtool)('every dashboard query parses (promtool check rules on them as recording rules)', () => {
    const dash = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-dash-'));
    try {
      const file = join(dir, 'dashboard.yml');
      // JSON is YAML: one recording rule per query.
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query:q${i}`, expr })) }] }));
      const run = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(run.stdout + run.stderr).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
