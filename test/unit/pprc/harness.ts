/**
 * Shared set-up for the PPRC tests (spec §5 notation): ESS E1 (serial FCA24)
 * with LSS 0x10 and 0x11, ESS E2 (serial FCA31) with LSS 0x10, each a pool
 * with a FlashCopyManager and a PprcManager on one virtual clock; E1 knows
 * E2 (and E2 knows E1, for reverse pairs). Volumes are 1 MiB = 16 tracks of
 * 64 KiB unless a test asks otherwise.
 */
import { expect } from 'vitest';
import { FlashCopyManager, type FlashCopyManagerOptions } from '../../../src/copy/flashcopy/index.js';
import { PprcManager, flashCopyHooks, type PprcManagerOptions } from '../../../src/copy/pprc/index.js';
import { isLunrigError, type ErrorCode } from '../../../src/errors.js';
import { Pool, type CreateLunRequest } from '../../../src/store/pool.js';
import { VirtualClock } from '../../../src/util/clock.js';
import type { Volume } from '../../../src/volume/volume.js';
import { tempDirs } from '../../helpers/temp-dir.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const TRACK = 64 * KiB;

export interface Ess {
  dir: string;
  serial: string;
  pool: Pool;
  fc: FlashCopyManager;
  pprc: PprcManager;
}

export interface Site {
  clock: VirtualClock;
  e1: Ess;
  e2: Ess;
  /** Close E1's managers and pool and open them again on the same directory (a restart). */
  restartE1(options?: PprcManagerOptions): Promise<void>;
}

const temp = tempDirs('lunrig-pprc-');
const open: Ess[] = [];

export const E1_LUNS: CreateLunRequest[] = [
  { name: 'p', size: MiB, lss: 0x10 },
  { name: 'p2', size: MiB, lss: 0x11 },
  { name: 'q', size: MiB, lss: 0x11 },
  { name: 'big', size: 2 * MiB, lss: 0x11 },
  { name: 'fcb', size: MiB, lss: 0x10 },
];
export const E2_LUNS: CreateLunRequest[] = [
  { name: 's', size: MiB, lss: 0x10 },
  { name: 's2', size: MiB, lss: 0x10 },
  { name: 'small', size: MiB / 2, lss: 0x10 },
  { name: 't', size: MiB, lss: 0x10 },
  { name: 'u', size: MiB, lss: 0x11 },
  { name: 'd', size: MiB, lss: 0x10 },
];

async function openEss(dir: string, serial: string, clock: VirtualClock, options: PprcManagerOptions, fcOptions: FlashCopyManagerOptions, luns?: CreateLunRequest[]): Promise<Ess> {
  const pool = await Pool.open({ dir, serial, engine: 'fs' });
  for (const lun of luns ?? []) await pool.createLun(lun);
  let pprc: PprcManager | undefined;
  const fc = await FlashCopyManager.open(pool, { clock, copyEngine: 'volume', ...flashCopyHooks(() => pprc), ...fcOptions });
  pprc = await PprcManager.open(pool, { clock, flashcopy: fc, ...options });
  const ess = { dir, serial, pool, fc, pprc };
  open.push(ess);
  return ess;
}

export async function closeEss(ess: Ess): Promise<void> {
  const i = open.indexOf(ess);
  if (i >= 0) open.splice(i, 1);
  await ess.pprc.close();
  await ess.fc.close();
  await ess.pool.close();
}

export async function site(options: { pprc?: PprcManagerOptions; fc?: FlashCopyManagerOptions; e2pprc?: PprcManagerOptions } = {}): Promise<Site> {
  const clock = new VirtualClock(Date.UTC(2001, 1, 1));
  const e1 = await openEss(temp.make(), 'FCA24', clock, options.pprc ?? {}, options.fc ?? {}, E1_LUNS);
  const e2 = await openEss(temp.make(), 'FCA31', clock, options.e2pprc ?? options.pprc ?? {}, options.fc ?? {}, E2_LUNS);
  e1.pprc.addEss(e2.pprc.asSecondary());
  e2.pprc.addEss(e1.pprc.asSecondary());
  const s: Site = {
    clock,
    e1,
    e2,
    async restartE1(again) {
      await closeEss(s.e1);
      s.e1 = await openEss(s.e1.dir, 'FCA24', clock, again ?? options.pprc ?? {}, options.fc ?? {});
      s.e1.pprc.addEss(s.e2.pprc.asSecondary());
      s.e2.pprc.addEss(s.e1.pprc.asSecondary());
    },
  };
  return s;
}

export async function closeAll(): Promise<void> {
  for (const ess of open.splice(0).reverse()) {
    await ess.pprc.close().catch(() => undefined);
    await ess.fc.close().catch(() => undefined);
    await ess.pool.close().catch(() => undefined);
  }
  temp.cleanup();
}

/** Links l1..ln from E1 to E2 and the path E1:lss -> E2:targetLss over them. */
export async function connect(s: Site, options: { links?: number; lss?: number; targetLss?: number } = {}): Promise<string[]> {
  const ids: string[] = [];
  const existing = new Set(s.e1.pprc.links().map((l) => l.id));
  for (let i = 1; ids.length < (options.links ?? 1); i++) {
    if (existing.has(`l${i}`)) continue;
    ids.push((await s.e1.pprc.addLink({ id: `l${i}`, to: 'FCA31' })).id);
  }
  await s.e1.pprc.establishPath({ lss: options.lss ?? 0x10, to: 'FCA31', targetLss: options.targetLss ?? 0x10, links: ids });
  return ids;
}

/** peek(): a volume's logical content without host access checks (spec §5): below the PPRC gate. */
export async function peek(ess: Ess, volume: string, offset = 0, length?: number): Promise<Buffer> {
  const stack = ess.pool.volume(volume);
  let v: Volume = stack.current;
  // Walk below PPRC gates (they refuse host reads); FlashCopy layers stay (logical content).
  while ((v as { constructor: { name: string } }).constructor.name === 'GateLayer') v = (v as unknown as { below: Volume }).below;
  return Buffer.from(await v.read(offset, length ?? stack.size - offset));
}

export function block(byte: number, length = 4096): Buffer {
  return Buffer.alloc(length, byte);
}

/** A block of pattern `tag` at `offset`, different per block and per tag. */
export function pattern(tag: number, offset: number, length = 4096): Buffer {
  const b = Buffer.allocUnsafe(length);
  const seed = (Math.imul(tag + 1, 0x9e3779b1) ^ Math.floor(offset / 512)) >>> 0;
  for (let i = 0; i < length; i++) b[i] = (seed + i * 7 + (i >> 9) * 13) & 0xff;
  return b;
}

export async function expectCode(promise: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    if (!isLunrigError(err)) throw err;
    expect(err.code, err.message).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** Let every pending promise continuation and setImmediate turn run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** Whether a promise has settled yet (without waiting for it). */
export async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await settle();
  return done;
}

/** Advance the virtual clock in `step` ms steps until `p` settles (at most `maxMs`); returns its value. */
export async function drive<T>(clock: VirtualClock, p: Promise<T>, step = 1, maxMs = 600_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await settle();
  for (let t = 0; !done && t < maxMs; t += step) {
    await clock.advance(step);
    await settle(2);
  }
  return p;
}

/** Establish p -> s (E1:0x10 -> E2:0x10) over one link, NO_COPY: DUPLEX at once. */
export async function duplexPair(s: Site, options: { criticalVolume?: boolean; links?: number; primary?: string; secondary?: string } = {}): Promise<string[]> {
  const links = await connect(s, { links: options.links ?? 1 });
  await s.e1.pprc.establish({ primary: options.primary ?? 'p', secondary: { ess: 'FCA31', volume: options.secondary ?? 's' }, mode: 'no-copy', criticalVolume: options.criticalVolume ?? false });
  return links;
}

/**
 * Like drive, but virtual time only jumps to timers due within `horizonMs`
 * (link latency), never to far ones (ack timeouts): real I/O gets real time,
 * so the virtual time spent is exactly the modelled delay.
 */
export async function driveTimers<T>(clock: VirtualClock, p: Promise<T>, horizonMs = 1000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 100_000 && !done; i++) {
    await settle(2);
    if (done) break;
    const next = clock.nextAt();
    if (next !== undefined && next - clock.now() <= horizonMs) await clock.advanceToNext();
    else await new Promise((r) => setTimeout(r, 1));
  }
  return p;
}

/** Wait (real time, bounded) until `cond` holds: for effects behind real file I/O (journal fdatasync). */
export async function until(cond: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
