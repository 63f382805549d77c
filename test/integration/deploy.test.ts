import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createTestApp, type TestApp } from '../support/app.js';

/** The metric families a series name belongs to (a histogram's _bucket/_sum/_count are its own). */
const family = (name: string) => name.replace(/_(bucket|sum|count)$/, '');
const referenced = (expr: string) => [...expr.matchAll(/\blatchkey_[a-z0-9_]+/g)].map((m) => family(m[0]));

interface Rule { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string } }

/** deploy/: the Prometheus alert rules and the Grafana dashboard parse, and name only metrics Latchkey exports. */
describe('deploy/ dashboards and alerts', () => {
  let app: TestApp;
  let exported: Set<string>;
  beforeAll(async () => {
    app = await createTestApp();
    exported = new Set((await app.context.metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  });
  afterAll(async () => { await app.close(); });

  it('alert rules: well-formed, with a severity and a summary, on exported metrics only', () => {
    const doc = parse(readFileSync('deploy/prometheus-alerts.yml', 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining([
      'LatchkeyTokenIssuanceFailing', 'LatchkeyTokenLatencyHigh', 'LatchkeySigningKeyTooOld', 'LatchkeyRefreshTokenReuseSpike',
    ]));
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Latchkey[A-Za-z]+$/);
      expect(['page', 'ticket']).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(10);
      const names = referenced(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(exported.has(name), `${rule.alert}: ${name}`).toBe(true);
    }
  });

  it('container: metrics and probes on a management port that is exposed but never published', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/METRICS_PORT=9464\b/);
    expect(dockerfile).toMatch(/METRICS_HOST=0\.0\.0\.0\b/);
    const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, { ports?: string[] }> };
    expect(compose.services.latchkey!.ports).toEqual(['8080:8080']);
  });

  it('dashboard: every panel queries exported metrics only', () => {
    const dash = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8')) as { uid: string; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    expect(dash.uid).toBe('latchkey');
    const all = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    for (const metric of ['latchkey_tokens_issued_total', 'latchkey_token_request_duration_seconds', 'latchkey_refresh_reuse_detected_total', 'latchkey_revocations_total', 'latchkey_signing_key_age_seconds']) {
      expect(all.some((e) => referenced(e).includes(metric)), metric).toBe(true);
    }
    for (const panel of dash.panels) {
      for (const t of panel.targets) for (const name of referenced(t.expr)) expect(exported.has(name), `${panel.title}: ${name}`).toBe(true);
    }
  });
});
