/**
 * A scripted fault schedule on the clock (spec §5.1 item 1): "at t=10 s take
 * VIOS1 down, at t=70 s bring it back". Steps are relative to start().
 */
import { LunrigError } from '../errors.js';
import type { Clock, ClockTimer } from '../util/clock.js';
import type { Fault, FaultTarget } from './fault-switch.js';

export interface TimelineStep {
  /** Milliseconds after start(). */
  atMs: number;
  target: FaultTarget;
  /** Faults to set; an empty list (or none) clears the target. */
  set?: Fault[];
  /** Shown in `fired`. */
  note?: string;
}

export class FaultTimeline {
  private readonly timers: ClockTimer[] = [];
  private readonly done: { atMs: number; at: number; note: string | undefined }[] = [];
  private finished: Promise<void> | undefined;

  constructor(
    private readonly clock: Clock,
    readonly steps: readonly TimelineStep[],
  ) {
    for (const s of steps) {
      if (!(s.atMs >= 0)) throw new LunrigError('INVALID_ARGUMENT', `timeline step at ${s.atMs} ms: time must be >= 0`);
    }
  }

  /** Steps already applied, with the clock reading when they were. */
  get fired(): readonly { atMs: number; at: number; note: string | undefined }[] {
    return this.done;
  }

  /** Schedule every step; resolves when the last one has been applied. */
  start(): Promise<void> {
    if (this.finished) return this.finished;
    const ordered = [...this.steps].sort((a, b) => a.atMs - b.atMs);
    let remaining = ordered.length;
    this.finished = new Promise<void>((resolve) => {
      if (remaining === 0) return resolve();
      for (const step of ordered) {
        this.timers.push(
          this.clock.setTimeout(() => {
            step.target.set(...(step.set ?? []));
            this.done.push({ atMs: step.atMs, at: this.clock.now(), note: step.note });
            if (--remaining === 0) resolve();
          }, step.atMs),
        );
      }
    });
    return this.finished;
  }

  /** Drop the steps not yet applied. */
  cancel(): void {
    for (const t of this.timers.splice(0)) this.clock.clearTimeout(t);
  }
}
