/**
 * Per-grain shared/exclusive locks (spec §2.3 invariant 3: copy-on-write,
 * background copy and target writes on one grain are serialised; invariant 2:
 * a target read of an uncopied grain never sees a half-copied one).
 *
 * Only grains not yet copied are ever locked, so the table holds entries for
 * grains in use right now, not for the volume. Requests take their grains in
 * ascending order, which rules out deadlock between them; the background
 * copier only ever tries (never waits), so it cannot deadlock either.
 * Waiters are served first come first served, so a stream of readers cannot
 * starve a copy-on-write.
 */

interface Waiter {
  exclusive: boolean;
  grant(): void;
}

interface LockState {
  readers: number;
  writer: boolean;
  waiters: Waiter[];
}

export type Release = () => void;

export class GrainLocks {
  private readonly table = new Map<number, LockState>();

  /** Grains currently locked or waited for (for tests and diagnostics). */
  get size(): number {
    return this.table.size;
  }

  /** Lock every grain of `grains` (ascending, distinct); resolves with one function releasing them all. */
  async acquire(grains: readonly number[], exclusive: boolean): Promise<Release> {
    const taken: number[] = [];
    try {
      for (const g of grains) {
        await this.lockOne(g, exclusive);
        taken.push(g);
      }
    } catch (err) {
      for (const g of taken) this.unlock(g, exclusive);
      throw err;
    }
    return once(() => {
      for (const g of taken) this.unlock(g, exclusive);
    });
  }

  /**
   * Lock grains [first, last] exclusively at once if nobody holds or waits
   * for any of them (the common case: no await, no promise); else undefined
   * and nothing taken (the caller queues with `acquire`).
   */
  tryAcquireRange(first: number, last: number): Release | undefined {
    for (let g = first; g <= last; g++) if (this.table.has(g)) return undefined;
    for (let g = first; g <= last; g++) this.table.set(g, { readers: 0, writer: true, waiters: [] });
    return once(() => {
      for (let g = first; g <= last; g++) this.unlock(g, true);
    });
  }

  /** Take the grain exclusively if nobody holds or waits for it. */
  tryExclusive(grain: number): boolean {
    if (this.table.has(grain)) return false;
    this.table.set(grain, { readers: 0, writer: true, waiters: [] });
    return true;
  }

  /** Release grains taken with tryExclusive. */
  releaseExclusive(grains: readonly number[]): void {
    for (const g of grains) this.unlock(g, true);
  }

  private lockOne(grain: number, exclusive: boolean): Promise<void> | void {
    const state = this.table.get(grain);
    if (!state) {
      this.table.set(grain, { readers: exclusive ? 0 : 1, writer: exclusive, waiters: [] });
      return;
    }
    if (!exclusive && !state.writer && state.waiters.length === 0) {
      state.readers++;
      return;
    }
    return new Promise<void>((grant) => state.waiters.push({ exclusive, grant }));
  }

  private unlock(grain: number, exclusive: boolean): void {
    const state = this.table.get(grain);
    if (!state) return;
    if (exclusive) state.writer = false;
    else state.readers--;
    if (state.writer || state.readers > 0) return;
    // Grant the next writer alone, or every reader queued before the next writer.
    const next = state.waiters[0];
    if (!next) {
      this.table.delete(grain);
      return;
    }
    if (next.exclusive) {
      state.waiters.shift();
      state.writer = true;
      next.grant();
      return;
    }
    while (state.waiters[0] && !state.waiters[0].exclusive) {
      state.readers++;
      state.waiters.shift()!.grant();
    }
  }
}

function once(fn: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
