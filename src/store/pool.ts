/**
 * A pool is one storage server in the ESS's terms: a data directory with one
 * sparse file set per LUN and a metadata file, a 5-character serial, and
 * open-systems LSSs 0x10..0x1f of at most 256 volumes each. It is the single
 * source of truth for LUNs; the NBD server, control API and CLI are views on it.
 *
 * Crash safety: files are created and sized before the metadata names them,
 * and metadata forgets a LUN before its files are removed, so after kill -9 the
 * metadata never names a LUN without files. Files the metadata does not name
 * are leftovers of an unacknowledged create or delete and are removed on open.
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { LunrigError, fromSystemError } from '../errors.js';
import type { IoEngine, LunBackendSpec } from '../io/backend.js';
import { SerialQueue } from '../util/serial-queue.js';
import { VolumeStack } from '../volume/volume-stack.js';
import { parseLunSize } from '../util/size.js';
import { VERSION } from '../version.js';
import {
  DEFAULT_LSS,
  VOLUMES_PER_LSS,
  generatePoolId,
  generateSerial,
  lssAddress,
  parseLss,
  uniqueId,
  validateLunName,
  validateSerial,
} from './identity.js';
import { Lun, lunInfoOf, type LunInfo } from './lun.js';
import { openEngine, type EngineKind } from './open-engine.js';
import { fsyncDir, readJsonFile, removeStaleTempFiles, writeJsonAtomic } from './persist.js';
import { PoolLock } from './pool-lock.js';
import {
  DEFAULT_SEGMENT_SIZE,
  LUNS_DIR,
  METADATA_FILE,
  POOL_FORMAT,
  POOL_FORMAT_VERSION,
  lunDir,
  segmentLayout,
  validatePoolRecord,
  type LunRecord,
  type PoolRecord,
} from './pool-metadata.js';

export type { LunInfo } from './lun.js';

export interface PoolOptions {
  /** Data directory; created when missing (unless createIfMissing is false). */
  dir: string;
  /** Serial for a new pool (5 characters 0-9/A-Z); ignored, but checked, for an existing one. Random when absent. */
  serial?: string;
  createIfMissing?: boolean;
  /** I/O engine: worker threads (default, or $LUNRIG_IO), plain fs calls, or one the caller built and owns. */
  engine?: EngineKind | IoEngine;
  /** Segment file size for a new pool (tests use small ones). */
  segmentSize?: number;
}

export interface CreateLunRequest {
  name: string;
  size: number | string;
  /** Hex LSS number 10..1f (number or '10' / '0x10'); default 0x10. */
  lss?: number | string;
  readOnly?: boolean;
}

export interface LssInfo {
  lss: number;
  address: string;
  luns: number;
  capacity: number;
}

export interface PoolInfo {
  dir: string;
  serial: string;
  poolId: string;
  version: string;
  lunCount: number;
  lssList: LssInfo[];
}

/** A change to a LUN that a veto may refuse (see Pool.addVeto). */
export interface LunChange {
  kind: 'delete' | 'grow' | 'read-only';
  lun: string;
}

/** Throws (a LunrigError) to refuse the change; copy services keep LUNs in relationships this way. */
export type LunChangeVeto = (change: LunChange) => void;

export interface PoolEvents {
  'lun-created': [LunInfo];
  'lun-changed': [LunInfo];
  'lun-deleted': [LunInfo];
}

export class Pool extends EventEmitter<PoolEvents> {
  private readonly luns = new Map<string, Lun>();
  private readonly stacks = new Map<string, VolumeStack>();
  private readonly control = new SerialQueue();
  private readonly vetoes = new Set<LunChangeVeto>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private record: PoolRecord,
    private readonly engine: IoEngine,
    private readonly ownsEngine: boolean,
    private readonly lock: PoolLock,
  ) {
    super();
  }

  static async open(options: PoolOptions): Promise<Pool> {
    const dir = path.resolve(options.dir);
    const file = path.join(dir, METADATA_FILE);
    if (options.createIfMissing === false) {
      await fsp.access(file).catch(() => {
        throw new LunrigError('INVALID_CONFIG', `no lunrig pool at ${dir}`, { dir });
      });
    }
    await fsp.mkdir(path.join(dir, LUNS_DIR), { recursive: true }).catch((err: unknown) => {
      throw fromSystemError(err, `creating pool directory ${dir}`);
    });
    const lock = await PoolLock.acquire(dir);
    let engine: IoEngine | undefined;
    const ownsEngine = typeof options.engine !== 'object';
    try {
      await removeStaleTempFiles(dir);
      const record = await loadOrCreateRecord(dir, file, options);
      await reconcileFiles(dir, record);
      engine = typeof options.engine === 'object' ? options.engine : await openEngine(options.engine);
      const pool = new Pool(dir, record, engine, ownsEngine, lock);
      for (const lun of record.luns) pool.luns.set(lun.name, new Lun(lun, record.serial, await engine.open(pool.backendSpec(lun))));
      return pool;
    } catch (err) {
      if (engine && ownsEngine) await engine.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
  }

  get serial(): string {
    return this.record.serial;
  }

  info(): PoolInfo {
    return {
      dir: this.dir,
      serial: this.record.serial,
      poolId: this.record.poolId,
      version: VERSION,
      lunCount: this.record.luns.length,
      lssList: this.lssList(),
    };
  }

  /** LSSs that hold volumes, plus the default one, in ascending order. */
  lssList(): LssInfo[] {
    const counts = new Map<number, number>([[DEFAULT_LSS, 0]]);
    for (const lun of this.record.luns) counts.set(lun.lss, (counts.get(lun.lss) ?? 0) + 1);
    return [...counts.entries()]
      .sort(([a], [b]) => a - b)
      .map(([lss, luns]) => ({ lss, address: lssAddress(this.record.serial, lss), luns, capacity: VOLUMES_PER_LSS }));
  }

  listLuns(): LunInfo[] {
    return this.record.luns.map((r) => lunInfoOf(r, this.record.serial));
  }

  lunInfo(name: string): LunInfo {
    return lunInfoOf(this.findRecord(name), this.record.serial);
  }

  /** The LUN as a Volume; it stays valid until the LUN is deleted or the pool closed. */
  getLun(name: string): Lun {
    this.checkOpen();
    const lun = this.luns.get(name);
    if (!lun) throw notFound(name);
    return lun;
  }

  /**
   * The LUN as hosts see it: the same object for the LUN's lifetime, forwarding
   * to whatever layers copy services stacked over it (FlashCopy, PPRC, gates).
   * NBD exports and library callers doing host I/O use this; `getLun` is the raw LUN.
   */
  volume(name: string): VolumeStack {
    this.checkOpen();
    let stack = this.stacks.get(name);
    if (!stack) {
      stack = new VolumeStack(this.getLun(name));
      this.stacks.set(name, stack);
    }
    return stack;
  }

  /** Where the LUN's bytes live, for bulk jobs (copy services) that work on the files directly. */
  lunBackendSpec(name: string): LunBackendSpec {
    return this.backendSpec(this.findRecord(name));
  }

  /** Register a veto run before a LUN is deleted, grown or switched read-only; returns its removal. */
  addVeto(veto: LunChangeVeto): () => void {
    this.vetoes.add(veto);
    return () => void this.vetoes.delete(veto);
  }

  /** Bytes the LUN's files occupy on disk (what was written, not what was provisioned). */
  async lunUsage(name: string): Promise<{ allocatedBytes: number }> {
    const record = this.findRecord(name);
    let allocatedBytes = 0;
    for (const seg of segmentLayout(this.dir, record.uniqueId, record.size, this.record.segmentSize)) {
      const st = await fsp.stat(seg.path);
      allocatedBytes += st.blocks * 512;
    }
    return { allocatedBytes };
  }

  createLun(request: CreateLunRequest): Promise<LunInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const name = validateLunName(request.name);
      const size = parseLunSize(request.size);
      const lss = request.lss === undefined ? DEFAULT_LSS : parseLss(request.lss);
      if (this.luns.has(name)) throw new LunrigError('LUN_EXISTS', `a LUN named '${name}' already exists`, { lun: name });
      const volumeNumber = this.freeVolumeNumber(lss);
      const lun: LunRecord = {
        name,
        size,
        lss,
        volumeNumber,
        uniqueId: uniqueId(this.record.poolId, this.record.nextSequence),
        readOnly: request.readOnly ?? false,
        createdAt: new Date().toISOString(),
      };
      await this.createFiles(lun);
      try {
        await this.commit({ ...this.record, nextSequence: this.record.nextSequence + 1, luns: [...this.record.luns, lun] });
        this.luns.set(name, new Lun(lun, this.record.serial, await this.engine.open(this.backendSpec(lun))));
      } catch (err) {
        await fsp.rm(lunDir(this.dir, lun.uniqueId), { recursive: true, force: true });
        throw err;
      }
      const info = lunInfoOf(lun, this.record.serial);
      this.emit('lun-created', info);
      return info;
    });
  }

  growLun(name: string, newSize: number | string): Promise<LunInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const current = this.findRecord(name);
      const size = parseLunSize(newSize);
      if (size < current.size) {
        throw new LunrigError('SHRINK_NOT_SUPPORTED', `LUN '${name}' is ${current.size} bytes; shrinking to ${size} would lose data`, { lun: name, size: current.size, requested: size });
      }
      if (size === current.size) return lunInfoOf(current, this.record.serial);
      this.vet({ kind: 'grow', lun: name });
      const grown: LunRecord = { ...current, size };
      await this.sizeFiles(grown);
      await this.commit({ ...this.record, luns: this.record.luns.map((r) => (r.name === name ? grown : r)) });
      await this.getLun(name).adopt(grown, this.backendSpec(grown));
      const info = lunInfoOf(grown, this.record.serial);
      this.emit('lun-changed', info);
      return info;
    });
  }

  setReadOnly(name: string, readOnly: boolean): Promise<LunInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const current = this.findRecord(name);
      if (current.readOnly === readOnly) return lunInfoOf(current, this.record.serial);
      this.vet({ kind: 'read-only', lun: name });
      const changed: LunRecord = { ...current, readOnly };
      await this.commit({ ...this.record, luns: this.record.luns.map((r) => (r.name === name ? changed : r)) });
      await this.getLun(name).adopt(changed);
      const info = lunInfoOf(changed, this.record.serial);
      this.emit('lun-changed', info);
      return info;
    });
  }

  deleteLun(name: string): Promise<void> {
    return this.control.run(async () => {
      this.checkOpen();
      const record = this.findRecord(name);
      const lun = this.getLun(name);
      this.vet({ kind: 'delete', lun: name });
      await this.commit({ ...this.record, luns: this.record.luns.filter((r) => r.name !== name) });
      this.luns.delete(name);
      this.stacks.delete(name);
      await lun.close();
      await fsp.rm(lunDir(this.dir, record.uniqueId), { recursive: true, force: true });
      this.emit('lun-deleted', lunInfoOf(record, this.record.serial));
    });
  }

  /** Flush every LUN, close the I/O engine and release the pool lock. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.control.run(async () => {
      const luns = [...this.luns.values()];
      const flushed = await Promise.allSettled(luns.map((l) => l.flush()));
      await Promise.allSettled(luns.map((l) => l.close()));
      this.luns.clear();
      this.stacks.clear();
      if (this.ownsEngine) await this.engine.close();
      await this.lock.release();
      const failed = flushed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closing) throw new LunrigError('CLOSED', `pool ${this.dir} is closed`);
  }

  private vet(change: LunChange): void {
    for (const veto of this.vetoes) veto(change);
  }

  private findRecord(name: string): LunRecord {
    const record = this.record.luns.find((r) => r.name === name);
    if (!record) throw notFound(name);
    return record;
  }

  private freeVolumeNumber(lss: number): number {
    const used = new Set(this.record.luns.filter((r) => r.lss === lss).map((r) => r.volumeNumber));
    for (let n = 0; n < VOLUMES_PER_LSS; n++) if (!used.has(n)) return n;
    throw new LunrigError('LSS_FULL', `LSS ${lssAddress(this.record.serial, lss)} already holds ${VOLUMES_PER_LSS} volumes`, { lss });
  }

  private backendSpec(lun: LunRecord): LunBackendSpec {
    const segments = segmentLayout(this.dir, lun.uniqueId, lun.size, this.record.segmentSize).map((s) => s.path);
    return { segments, segmentSize: this.record.segmentSize, size: lun.size, readOnly: lun.readOnly };
  }

  private async commit(next: PoolRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, METADATA_FILE), next);
    this.record = next;
  }

  private async createFiles(lun: LunRecord): Promise<void> {
    const dir = lunDir(this.dir, lun.uniqueId);
    await fsp.mkdir(dir, { recursive: true });
    await this.sizeFiles(lun);
    await fsyncDir(path.dirname(dir));
  }

  /** Create or extend the segment files to the record's size; sparse, so this costs no data blocks. */
  private async sizeFiles(lun: LunRecord): Promise<void> {
    try {
      for (const seg of segmentLayout(this.dir, lun.uniqueId, lun.size, this.record.segmentSize)) {
        const handle = await fsp.open(seg.path, 'a');
        try {
          if ((await handle.stat()).size !== seg.size) await handle.truncate(seg.size);
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await fsyncDir(lunDir(this.dir, lun.uniqueId));
    } catch (err) {
      throw fromSystemError(err, `sizing files of LUN ${lun.name}`);
    }
  }
}

function notFound(name: string): LunrigError {
  return new LunrigError('LUN_NOT_FOUND', `no LUN named '${name}'`, { lun: name });
}

async function loadOrCreateRecord(dir: string, file: string, options: PoolOptions): Promise<PoolRecord> {
  const raw = await readJsonFile(file);
  if (raw !== undefined) {
    const record = await validatePoolRecord(raw, file);
    if (options.serial !== undefined && validateSerial(options.serial) !== record.serial) {
      throw new LunrigError('INVALID_CONFIG', `pool ${dir} has serial ${record.serial}, not ${options.serial}`, { dir });
    }
    return record;
  }
  const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  if (!Number.isSafeInteger(segmentSize) || segmentSize < 1 << 20 || segmentSize % 4096 !== 0) {
    throw new LunrigError('INVALID_CONFIG', `segment size must be a multiple of 4096 bytes and at least 1 MiB, got ${segmentSize}`);
  }
  const record: PoolRecord = {
    format: POOL_FORMAT,
    version: POOL_FORMAT_VERSION,
    serial: options.serial !== undefined ? validateSerial(options.serial) : generateSerial(),
    poolId: generatePoolId(),
    segmentSize,
    nextSequence: 1,
    createdAt: new Date().toISOString(),
    luns: [],
  };
  await writeJsonAtomic(file, record);
  return record;
}

/**
 * Make the files match the metadata after a crash: remove LUN directories the
 * metadata does not name, trim segments an interrupted grow left too long (a
 * grow is acknowledged only after the metadata commit, so no acknowledged data
 * lies past the recorded size), and refuse to open if a named file is missing.
 */
async function reconcileFiles(dir: string, record: PoolRecord): Promise<void> {
  const known = new Set(record.luns.map((l) => l.uniqueId));
  for (const entry of await fsp.readdir(path.join(dir, LUNS_DIR))) {
    if (!known.has(entry)) await fsp.rm(path.join(dir, LUNS_DIR, entry), { recursive: true, force: true });
  }
  for (const lun of record.luns) {
    const layout = segmentLayout(dir, lun.uniqueId, lun.size, record.segmentSize);
    for (const seg of layout) {
      const st = await fsp.stat(seg.path).catch(() => undefined);
      if (!st) throw new LunrigError('POOL_CORRUPT', `LUN '${lun.name}' is missing its file ${seg.path}`, { lun: lun.name, file: seg.path });
      if (st.size !== seg.size) await fsp.truncate(seg.path, seg.size);
    }
    const expected = new Set(layout.map((s) => path.basename(s.path)));
    for (const extra of await fsp.readdir(lunDir(dir, lun.uniqueId))) {
      if (!expected.has(extra) && extra.startsWith('segment-')) await fsp.rm(path.join(lunDir(dir, lun.uniqueId), extra), { force: true });
    }
  }
}
