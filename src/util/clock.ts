/**
 * Time for rules that talk about seconds (copy rates, ETAs, health-check
 * intervals, timeouts): an injectable Clock, so tests run in virtual time and
 * never sleep for real (DESIGN.md rules). Milliseconds throughout.
 */
import { LunrigError } from '../errors.js';

/** An opaque timer handle; give it back to the clock that made it. */
export interface ClockTimer {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds since the epoch (a VirtualClock starts where it is told). */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function sleepOn(clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new LunrigError('CLOSED', 'aborted');
}

let nextSystemTimer = 1;
const systemTimers = new Map<number, NodeJS.Timeout>();

/** Real time: Date.now and the Node timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = nextSystemTimer++;
    systemTimers.set(
      id,
      setTimeout(() => {
        systemTimers.delete(id);
        fn();
      }, Math.max(0, ms)),
    );
    return { id };
  },
  clearTimeout(timer: ClockTimer): void {
    clearTimeout(systemTimers.get(timer.id));
    systemTimers.delete(timer.id);
  },
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(systemClock, ms, signal);
  },
});

interface VirtualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Time that moves only when told. `advance` fires due timers in time order,
 * letting promise continuations run after each, so code awaiting a sleep
 * behaves as it would in real time, only instantly.
 */
export class VirtualClock implements Clock {
  private time: number;
  private nextId = 1;
  private timers: VirtualTimer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const timer = { id: this.nextId++, at: this.time + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers = this.timers.filter((t) => t.id !== timer.id);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.length;
  }

  /** When the next timer fires, or undefined when none is set. */
  nextAt(): number | undefined {
    return this.timers.reduce<number | undefined>((min, t) => (min === undefined || t.at < min ? t.at : min), undefined);
  }

  /** Move time forward by `ms`, firing every timer that falls due on the way (in order). */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      const next = this.nextAt();
      if (next === undefined || next > until) break;
      await this.fireAt(next);
    }
    this.time = until;
    await settle();
  }

  /** Jump to the next timer and fire it (and any due at the same time); false when no timer is set. */
  async advanceToNext(): Promise<boolean> {
    const next = this.nextAt();
    if (next === undefined) return false;
    await this.fireAt(next);
    return true;
  }

  private async fireAt(at: number): Promise<void> {
    this.time = Math.max(this.time, at);
    const due = this.timers.filter((t) => t.at <= at).sort((a, b) => a.at - b.at || a.id - b.id);
    this.timers = this.timers.filter((t) => t.at > at);
    for (const t of due) {
      t.fn();
      await settle();
    }
  }
}

/** Let pending promise continuations run (a macrotask turn, so chained awaits finish too). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
