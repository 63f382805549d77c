import type { Clock } from '../../src/clock.js';

/** A clock that moves only when a test says so. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | string = '2026-06-01T00:00:00Z') { this.t = new Date(start).getTime(); }
  now(): Date { return new Date(this.t); }
  advance(seconds: number): void { this.t += seconds * 1000; }
}
