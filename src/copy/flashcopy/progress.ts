/**
 * What the source's Information panel shows (spec §2.6: "how many tracks
 * still have to be copied"), plus percent and an ETA from the copy rate
 * actually achieved (or the rate limit, before anything was measured).
 */
import type { Clock } from '../../util/clock.js';

export interface CopyProgress {
  grains: number;
  copiedGrains: number;
  /** fcTracksRemaining in the spec's terms. */
  remainingGrains: number;
  bytesRemaining: number;
  /** 0..100, one decimal; 100 only when nothing remains. */
  percent: number;
  /** Seconds until background copy is done at the current pace; null when it does not run (NOCOPY, paused, copied). */
  etaSeconds: number | null;
}

export interface ProgressInput {
  grains: number;
  copiedGrains: number;
  grainSize: number;
  /** Bytes the relationship covers (the last grain may be short). */
  size: number;
  /** Whether the last (maybe short) grain is among the copied ones. */
  lastGrainCopied: boolean;
  /** Whether background copy runs (COPY mode and not paused). */
  copying: boolean;
  /** Bytes per second, measured or configured; undefined when unknown. */
  pace: number | undefined;
}

export function copyProgress(p: ProgressInput): CopyProgress {
  const remainingGrains = p.grains - p.copiedGrains;
  const shortfall = p.lastGrainCopied ? 0 : p.grains * p.grainSize - p.size;
  const bytesRemaining = Math.max(0, remainingGrains * p.grainSize - shortfall);
  const exact = p.grains === 0 ? 100 : (p.copiedGrains / p.grains) * 100;
  const percent = remainingGrains > 0 ? Math.min(99.9, Math.floor(exact * 10) / 10) : 100;
  const etaSeconds = !p.copying || remainingGrains === 0 || p.pace === undefined || p.pace <= 0 ? null : Math.ceil(bytesRemaining / p.pace);
  return { grains: p.grains, copiedGrains: p.copiedGrains, remainingGrains, bytesRemaining, percent, etaSeconds };
}

/** Bytes per second over recent batches (exponentially weighted), on the given clock. */
export class PaceMeter {
  private last: number | undefined;
  private pace: number | undefined;

  constructor(private readonly clock: Clock) {}

  /** `bytes` were copied since the previous call (the first call only starts the clock). */
  record(bytes: number): void {
    const now = this.clock.now();
    if (this.last !== undefined && now > this.last) {
      const sample = (bytes * 1000) / (now - this.last);
      this.pace = this.pace === undefined ? sample : 0.7 * this.pace + 0.3 * sample;
    }
    this.last = now;
  }

  /** Forget the timing (after a pause), keeping the pace learnt. */
  restart(): void {
    this.last = undefined;
  }

  get bytesPerSecond(): number | undefined {
    return this.pace;
  }
}
