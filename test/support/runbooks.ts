import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** docs/runbooks/, where every runbook lives (README.md is the index, no steps). */
export const RUNBOOKS_DIR = new URL('../../docs/runbooks/', import.meta.url).pathname;

export interface RunbookStep {
  name: string;
  /** `<!-- step: NAME; sets VAR -->`: the block prints one value the following steps use as $VAR. */
  sets?: string;
  script: string;
}

/** A step marker, then (after blank lines only) a fenced sh block. */
const STEP = /<!-- step: ([a-z0-9-]+)(?:; sets ([A-Z_][A-Z0-9_]*))? -->\n\s*```sh\n([\s\S]*?)\n```/g;

/** The marked steps of a runbook, in document order. */
export function parseRunbook(text: string): RunbookStep[] {
  return [...text.matchAll(STEP)].map((m) => ({ name: m[1]!, ...(m[2] ? { sets: m[2] } : {}), script: m[3]! }));
}

export function runbookFiles(): string[] {
  return readdirSync(RUNBOOKS_DIR).filter((f) => f.endsWith('.md') && f !== 'README.md').sort();
}

export function readRunbook(file: string): { text: string; steps: RunbookStep[] } {
  const text = readFileSync(join(RUNBOOKS_DIR, file), 'utf8');
  return { text, steps: parseRunbook(text) };
}

export interface StepResult { stdout: string; stderr: string }

/**
 * One runbook, run step by step as an operator would: each block in `bash -euo pipefail` with
 * only PATH and the given variables (an unset one fails the step), bounded in time. Steps run
 * in document order (`again()` starts over); a `sets VAR` step's output becomes $VAR.
 */
export class Runbook {
  readonly steps: RunbookStep[];
  readonly ran = new Set<string>();
  private last = -1;

  constructor(readonly file: string, readonly env: Record<string, string>) {
    for (const tool of ['bash', 'curl', 'jq']) {
      try {
        execFileSync(tool, ['--version'], { stdio: 'ignore' });
      } catch {
        throw new Error(`the runbooks' steps need ${tool} (apt-get install ${tool}; .ci/run installs it)`);
      }
    }
    this.steps = readRunbook(file).steps;
    if (this.steps.length === 0) throw new Error(`${file}: no marked steps`);
  }

  set(vars: Record<string, string>): void {
    Object.assign(this.env, vars);
  }

  /** Starts over from the first step (the same incident a second time, e.g. on another store). */
  again(): void {
    this.last = -1;
  }

  async run(name: string, timeoutMs = 30_000): Promise<StepResult> {
    const index = this.steps.findIndex((s) => s.name === name);
    if (index < 0) throw new Error(`${this.file}: no step ${name}`);
    if (index <= this.last) throw new Error(`${this.file}: step ${name} out of order (after ${this.steps[this.last]!.name})`);
    this.last = index;
    const step = this.steps[index]!;
    const result = await new Promise<StepResult>((resolve, reject) => {
      execFile('bash', ['-euo', 'pipefail', '-c', step.script], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...this.env }, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024,
      }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${this.file} step ${name} failed (${err.code ?? err.signal}): ${stderr}\n${stdout}`));
        else resolve({ stdout, stderr });
      });
    });
    this.ran.add(name);
    if (step.sets) {
      const value = result.stdout.trim();
      if (value === '' || value.includes('\n')) throw new Error(`${this.file} step ${name} should print one value for ${step.sets}, printed: ${JSON.stringify(result.stdout)}`);
      this.env[step.sets] = value;
    }
    return result;
  }

  /** The steps never run. */
  unrun(): string[] {
    return this.steps.map((s) => s.name).filter((n) => !this.ran.has(n));
  }
}

/** Tab-separated lines of a step's output (jq @tsv), empty lines dropped. */
export function rows(stdout: string): string[][] {
  return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

/** Prometheus text exposition: the value of every sample whose name and labels match. */
export function samples(text: string, name: string, labels: Record<string, string> = {}): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[l[1]!] = l[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) out.push({ labels: found, value: Number(m[3]) });
  }
  return out;
}
