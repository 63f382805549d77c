import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createTestApp, type TestApp } from '../support/app.js';

/** The metric families a series name belongs to (a histogram's _bucket/_sum/_count are its own). */
const family = (name: string) => name.replace(/_(bucket|sum|count)$/, '');
const referenced = (expr: string) => [...expr.matchAll(/\blatchkey_[a-z0-9_]+/g)].map((m) => family(m[0]));

interface Rule { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string; runbook_url: string } }
interface RecordingRule { record: string; expr: string; labels?: Record<string, string> }
const groups = <R>(file: string) => (parse(readFileSync(file, 'utf8')) as { groups: Array<{ name: string; rules: R[] }> }).groups.flatMap((g) => g.rules);

/** The runbooks the rules point at (docs/runbooks/), under the base URL the README says to replace. */
const RUNBOOKS = ['leaked-client-secret', 'stolen-refresh-token', 'compromised-account', 'bad-key-rotation', 'leaked-signing-key', 'outage', 'slo-burn'];
const RUNBOOK_URL = new RegExp(`^https://github\\.com/OWNER/latchkey/blob/main/docs/runbooks/(${RUNBOOKS.join('|')})\\.md$`);

/** deploy/: the Prometheus alert rules and the Grafana dashboard parse, and name only metrics Latchkey exports. */
describe('deploy/ dashboards and alerts', () => {
  let app: TestApp;
  let exported: Set<string>;
  beforeAll(async () => {
    app = await createTestApp();
    exported = new Set((await app.context.metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  });
  afterAll(async () => { await app.close(); });

  const recording = groups<RecordingRule>('deploy/prometheus-rules.yml');
  const recorded = new Set(recording.map((r) => r.record));

  it('recording rules: the SLO error ratios for every SLO and burn-rate window, on exported metrics only', () => {
    const slos = ['token_issuance', 'token_latency', 'refresh', 'introspection', 'introspection_latency', 'authorization'];
    for (const window of ['5m', '30m', '1h', '2h', '6h', '1d']) {
      const ratios = recording.filter((r) => r.record === `latchkey:slo_error_ratio:rate${window}`).map((r) => r.labels?.slo);
      expect(ratios, window).toEqual(slos);
    }
    for (const rule of recording) {
      expect(rule.record).toMatch(/^latchkey:[a-z_]+:[a-z0-9_]+$/);
      for (const name of referenced(rule.expr)) expect(exported.has(name), `${rule.record}: ${name}`).toBe(true);
    }
  });

  it('alert rules: well-formed, with a severity, a summary and a runbook, on exported metrics or recorded SLO ratios only', () => {
    const rules = groups<Rule>('deploy/prometheus-alerts.yml');
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining([
      'LatchkeyTokenIssuanceFailing', 'LatchkeyTokenLatencyHigh', 'LatchkeySigningKeyTooOld', 'LatchkeyRefreshTokenReuseSpike',
      'LatchkeyInstanceDown', 'LatchkeyMetricsAbsent', 'LatchkeyNoActiveSigningKey', 'LatchkeyClientIssuanceSpike',
    ]));
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Latchkey[A-Za-z]+$/);
      expect(['page', 'ticket']).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(10);
      expect(rule.annotations.runbook_url, rule.alert).toMatch(RUNBOOK_URL);
      const names = referenced(rule.expr);
      const records = [...rule.expr.matchAll(/\blatchkey:[a-z_]+:[a-z0-9_]+/g)].map((m) => m[0]);
      const up = /\bup\{job="latchkey"\}/.test(rule.expr);
      expect(names.length + records.length + (up ? 1 : 0), rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(exported.has(name), `${rule.alert}: ${name}`).toBe(true);
      for (const record of records) expect(recorded.has(record), `${rule.alert}: ${record}`).toBe(true);
    }
    // Per instance and algorithm, never a sum that hides one bad instance.
    expect(rules.find((r) => r.alert === 'LatchkeyNoActiveSigningKey')!.expr).toMatch(/^min by \(instance, alg\) \(latchkey_signing_keys\{state="active"\}\) < 1$/);
  });

  it('container: metrics and probes on a management port that is exposed but never published', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/METRICS_PORT=9464\b/);
    expect(dockerfile).toMatch(/METRICS_HOST=0\.0\.0\.0\b/);
    const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, { ports?: string[] }> };
    expect(compose.services.latchkey!.ports).toEqual(['8080:8080']);
  });

  it('dashboard: every panel queries exported metrics or recorded SLO ratios only', () => {
    const dash = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8')) as { uid: string; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    expect(dash.uid).toBe('latchkey');
    const all = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    for (const metric of ['latchkey_tokens_issued_total', 'latchkey_token_request_duration_seconds', 'latchkey_refresh_reuse_detected_total', 'latchkey_revocations_total', 'latchkey_signing_key_age_seconds',
      'latchkey_signing_keys', 'latchkey_client_auth_failures_total', 'latchkey_sso_sessions', 'latchkey_refresh_families', 'latchkey_revocation_propagation_seconds',
      'latchkey_introspections_inactive_total', 'latchkey_admin_requests_total']) {
      expect(all.some((e) => referenced(e).includes(metric)), metric).toBe(true);
    }
    // SLO burn panels: both burn windows of each pair, read from the recording rules.
    for (const window of ['1h', '5m', '6h', '1d']) expect(all.some((e) => e.includes(`latchkey:slo_error_ratio:rate${window}`)), window).toBe(true);
    expect(new Set(dash.panels.map((p) => (p as { id?: number }).id)).size).toBe(dash.panels.length);
    for (const panel of dash.panels) {
      for (const t of panel.targets) {
        for (const name of referenced(t.expr)) expect(exported.has(name), `${panel.title}: ${name}`).toBe(true);
        for (const m of t.expr.matchAll(/\blatchkey:[a-z_]+:[a-z0-9_]+/g)) expect(recorded.has(m[0]), `${panel.title}: ${m[0]}`).toBe(true);
      }
    }
  });
});
