/**
 * BulkJobs: long-running grain work for copy services (FlashCopy background
 * copy, PPRC resync, checksum audits) on a lazily created piscina pool. Each
 * task covers many grains (taskBytes of LUN data, 16 MiB by default): piscina
 * costs tens of microseconds per task, which only large tasks amortise.
 * Bulk jobs read and write the segment files directly; callers order them
 * against foreground I/O (e.g. by holding the grains' bitmap bits).
 */
import os from 'node:os';
import { Piscina } from 'piscina';
import { ERROR_CODES, LunrigError, type ErrorCode } from '../../errors.js';
import { workerUrl } from '../../util/worker-url.js';
import type { LunBackendSpec } from '../backend.js';
import { checkSpec } from '../spec-check.js';
import type { TaskOutcome } from './bulk-worker.js';
import type { CopyTaskResult, FileSpec, GrainTask } from './grain-tasks.js';
import {
  checkGrainSize,
  chunk,
  grainCount,
  rangeGrains,
  resolveRange,
  selectedGrains,
  type GrainRange,
  type GrainSelection,
} from './grain-selection.js';

export type { GrainRange, GrainSelection } from './grain-selection.js';

export interface BulkJobsOptions {
  /** Pool threads, at most 2 (default min(2, availableParallelism)). */
  maxThreads?: number;
  /** LUN bytes per piscina task (default 16 MiB; at least one grain). */
  taskBytes?: number;
  /** Idle pool threads exit after this long (default 10 s). */
  idleTimeoutMs?: number;
}

export interface CopyResult {
  grains: number;
  bytesCopied: number;
  /** Bytes of source holes reproduced as holes in the target. */
  bytesPunched: number;
}

export class BulkJobs {
  private pool: Piscina | undefined;
  private closed = false;
  private readonly maxThreads: number;
  private readonly taskBytes: number;
  private readonly idleTimeout: number;

  constructor(options: BulkJobsOptions = {}) {
    this.maxThreads = Math.max(1, Math.min(2, options.maxThreads ?? os.availableParallelism()));
    this.taskBytes = options.taskBytes ?? 16 * 1024 * 1024;
    this.idleTimeout = options.idleTimeoutMs ?? 10_000;
  }

  /** CRC32C of each grain in `range` (default: every grain); hole grains hash as zeros without being read. */
  async checksum(spec: LunBackendSpec, grainSize: number, range?: GrainRange): Promise<Uint32Array> {
    checkSpec(spec);
    checkGrainSize(grainSize);
    const r = resolveRange(range, grainCount(spec.size, grainSize));
    const parts = await Promise.all(
      chunk(rangeGrains(r), this.grainsPerTask(grainSize)).map((grains) =>
        this.run<Uint32Array>({ kind: 'checksum', spec: fileSpec(spec), grainSize, grains }),
      ),
    );
    const out = new Uint32Array(r.count);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /**
   * Copies the selected grains from `src` to `dst` at the same offsets; holes in
   * the source become holes in the target. With `sync` (default) the target's
   * files are fdatasync'ed before the promise resolves.
   */
  async copyGrains(src: LunBackendSpec, dst: LunBackendSpec, selection: GrainSelection, grainSize: number, options: { sync?: boolean } = {}): Promise<CopyResult> {
    checkSpec(src);
    checkSpec(dst);
    checkGrainSize(grainSize);
    if (dst.readOnly) throw new LunrigError('READ_ONLY', 'copyGrains: target is read-only');
    const grains = selectedGrains(selection, grainCount(Math.min(src.size, dst.size), grainSize));
    const parts = await Promise.all(
      chunk(grains, this.grainsPerTask(grainSize)).map((g) =>
        this.run<CopyTaskResult>({ kind: 'copy', src: fileSpec(src), dst: fileSpec(dst), grainSize, grains: g, sync: options.sync ?? true }),
      ),
    );
    return parts.reduce<CopyResult>(
      (sum, p) => ({ grains: sum.grains + p.grains, bytesCopied: sum.bytesCopied + p.bytesCopied, bytesPunched: sum.bytesPunched + p.bytesPunched }),
      { grains: 0, bytesCopied: 0, bytesPunched: 0 },
    );
  }

  /** Indices (ascending) of the grains whose contents differ, over the smaller LUN's size. */
  async compare(a: LunBackendSpec, b: LunBackendSpec, grainSize: number, range?: GrainRange): Promise<number[]> {
    checkSpec(a);
    checkSpec(b);
    checkGrainSize(grainSize);
    const r = resolveRange(range, grainCount(Math.min(a.size, b.size), grainSize));
    const parts = await Promise.all(
      chunk(rangeGrains(r), this.grainsPerTask(grainSize)).map((grains) =>
        this.run<Float64Array>({ kind: 'compare', a: fileSpec(a), b: fileSpec(b), grainSize, grains }),
      ),
    );
    return parts.flatMap((p) => Array.from(p));
  }

  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private grainsPerTask(grainSize: number): number {
    return Math.max(1, Math.floor(this.taskBytes / grainSize));
  }

  private async run<T>(task: GrainTask): Promise<T> {
    if (this.closed) throw new LunrigError('CLOSED', 'bulk jobs are closed');
    this.pool ??= new Piscina({
      filename: workerUrl(import.meta.url, './bulk-worker.js').href,
      minThreads: 0,
      maxThreads: this.maxThreads,
      idleTimeout: this.idleTimeout,
      name: 'default',
    });
    const outcome = (await this.pool.run(task)) as TaskOutcome<T>;
    if ('error' in outcome) {
      const code: ErrorCode = (ERROR_CODES as readonly string[]).includes(outcome.error.code) ? (outcome.error.code as ErrorCode) : 'IO_ERROR';
      throw new LunrigError(code, outcome.error.message, outcome.error.errno ? { errno: outcome.error.errno } : undefined);
    }
    return outcome.ok;
  }
}

function fileSpec(spec: LunBackendSpec): FileSpec {
  return { segments: [...spec.segments], segmentSize: spec.segmentSize, size: spec.size };
}
