/**
 * FsIoEngine: the simple baseline. One fs.promises (libuv thread pool) call per
 * request piece, FileHandle.read / write / datasync, same semantics as the
 * worker engine. Used when LUNRIG_IO=fs and as the benchmark comparison.
 */
import fs from 'node:fs/promises';
import { fromSystemError, LunrigError } from '../errors.js';
import { native } from '../native/index.js';
import type { Extent } from '../volume/volume.js';
import { emptyStats, type IoEngine, type LunBackend, type LunBackendSpec, type QueueStats } from './backend.js';
import { DatasyncGate } from './datasync-gate.js';
import { appendExtent, kindName } from './extents.js';
import { blockStatusSync } from './segmented-file.js';
import { checkGrownSpec, checkSpec } from './spec-check.js';

const ZERO_CHUNK = 1024 * 1024;

interface Segment {
  handle: fs.FileHandle;
  gate: DatasyncGate;
}

export class FsIoEngine implements IoEngine {
  readonly name = 'fs';
  private readonly backends = new Set<FsLunBackend>();
  private syncs = 0;
  private closed = false;

  async open(spec: LunBackendSpec): Promise<LunBackend> {
    if (this.closed) throw new LunrigError('CLOSED', 'I/O engine is closed');
    checkSpec(spec);
    const backend = new FsLunBackend(spec, () => this.syncs++, (b) => this.backends.delete(b));
    await backend.openSegments(spec.segments);
    this.backends.add(backend);
    return backend;
  }

  /** fdatasync calls made so far (diagnostics and tests). */
  fdatasyncCount(): number {
    return this.syncs;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.backends].map((b) => b.close()));
  }
}

export class FsLunBackend implements LunBackend {
  private readonly st: QueueStats = emptyStats();
  private readonly segments: Segment[] = [];
  private spec: LunBackendSpec;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    spec: LunBackendSpec,
    private readonly counted: () => void,
    private readonly forget: (b: FsLunBackend) => void,
  ) {
    this.spec = { ...spec, segments: [...spec.segments] };
  }

  /** @internal */
  async openSegments(paths: readonly string[]): Promise<void> {
    const opened: fs.FileHandle[] = [];
    try {
      for (const path of paths) opened.push(await fs.open(path, this.spec.readOnly ? 'r' : 'r+'));
    } catch (err) {
      await Promise.allSettled(opened.map((h) => h.close()));
      throw fromSystemError(err, 'open LUN segment');
    }
    for (const handle of opened) this.segments.push({ handle, gate: new DatasyncGate(() => handle.datasync(), this.counted) });
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.run(false, async () => {
      if (into && into.length < length) throw new LunrigError('INVALID_ARGUMENT', `read: buffer of ${into.length} bytes is shorter than ${length}`);
      const target = into ?? Buffer.allocUnsafe(length);
      await this.pieces(offset, length, async (seg, pos, at, n) => {
        let got = 0;
        while (got < n) {
          const { bytesRead } = await seg.handle.read(target, at + got, n - got, pos + got);
          if (bytesRead === 0) {
            target.fill(0, at + got, at + n);
            break;
          }
          got += bytesRead;
        }
      });
      this.st.reads++;
      this.st.bytesRead += length;
      return target.length === length ? target : target.subarray(0, length);
    });
  }

  write(offset: number, data: Uint8Array, fua: boolean): Promise<void> {
    return this.run(true, async () => {
      const touched = await this.pieces(offset, data.length, async (seg, pos, at, n) => {
        let put = 0;
        while (put < n) put += (await seg.handle.write(data, at + put, n - put, pos + put)).bytesWritten;
      });
      if (fua) await this.sync(touched);
      this.st.writes++;
      this.st.bytesWritten += data.length;
    });
  }

  writeZeroes(offset: number, length: number, options: { noHole: boolean; fua: boolean }): Promise<void> {
    return this.run(true, async () => {
      const touched = await this.zero(offset, length, options.noHole ? 'allocate' : 'punch');
      if (options.fua) await this.sync(touched);
      this.st.zeroes++;
    });
  }

  trim(offset: number, length: number, fua: boolean): Promise<void> {
    return this.run(true, async () => {
      const touched = await this.zero(offset, length, 'punch');
      if (fua) await this.sync(touched);
      this.st.trims++;
    });
  }

  flush(): Promise<void> {
    return this.run(false, async () => {
      await this.sync(this.segments);
      this.st.flushes++;
    });
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.run(false, async () => {
      const extents: Extent[] = [];
      let pos = offset;
      const file = { fds: this.segments.map((s) => s.handle.fd), segmentSize: this.spec.segmentSize, size: this.spec.size };
      try {
        blockStatusSync(file, offset, length, (n, kind) => {
          appendExtent(extents, pos, n, kindName(kind));
          pos += n;
          return true;
        });
      } catch (err) {
        throw fromSystemError(err, 'blockStatus');
      }
      return extents;
    });
  }

  async resize(spec: LunBackendSpec): Promise<void> {
    if (this.state !== 'open') throw new LunrigError('CLOSED', 'LUN backend is closed');
    checkGrownSpec(this.spec, spec);
    await this.openSegments(spec.segments.slice(this.segments.length));
    this.spec = { ...this.spec, size: spec.size, segments: [...spec.segments] };
  }

  stats(): QueueStats {
    return { ...this.st, inFlight: this.inFlight };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = 'closing';
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.state = 'closed';
    this.forget(this);
    const results = await Promise.allSettled(this.segments.map((s) => s.handle.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw fromSystemError(failed.reason, 'close LUN segment');
  }

  private async run<T>(mutates: boolean, op: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') throw new LunrigError('CLOSED', 'LUN backend is closed');
    if (mutates && this.spec.readOnly) throw new LunrigError('READ_ONLY', 'LUN is read-only');
    this.inFlight++;
    try {
      return await op();
    } catch (err) {
      this.st.errors++;
      throw fromSystemError(err, 'I/O request');
    } finally {
      if (--this.inFlight === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }

  /** Runs `piece` for each segment piece of the range (concurrently); returns the segments touched. */
  private async pieces(offset: number, length: number, piece: (seg: Segment, pos: number, at: number, n: number) => Promise<void>): Promise<Segment[]> {
    const size = this.spec.segmentSize;
    const touched: Segment[] = [];
    const work: Promise<void>[] = [];
    for (let done = 0; done < length; ) {
      const pos = offset + done;
      const index = Math.floor(pos / size);
      const within = pos - index * size;
      const n = Math.min(length - done, size - within);
      const seg = this.segments[index];
      if (!seg) throw new LunrigError('IO_ERROR', `segment ${index} is not open`);
      touched.push(seg);
      work.push(piece(seg, within, done, n));
      done += n;
    }
    if (work.length === 1) await work[0];
    else await Promise.all(work);
    return touched;
  }

  private async zero(offset: number, length: number, mode: 'punch' | 'allocate'): Promise<Segment[]> {
    const sys = native.syscalls;
    let zeros: Uint8Array | undefined;
    return this.pieces(offset, length, async (seg, pos, _at, n) => {
      if (sys) {
        try {
          if (mode === 'punch') sys.punchHole(seg.handle.fd, pos, n);
          else sys.zeroRange(seg.handle.fd, pos, n);
          return;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw err;
        }
      }
      zeros ??= new Uint8Array(Math.min(ZERO_CHUNK, length));
      for (let put = 0; put < n; ) {
        const chunk = Math.min(zeros.length, n - put);
        put += (await seg.handle.write(zeros, 0, chunk, pos + put)).bytesWritten;
      }
    });
  }

  private async sync(segments: readonly Segment[]): Promise<void> {
    const unique = [...new Set(segments)];
    await Promise.all(unique.map((s) => s.gate.sync()));
  }
}
