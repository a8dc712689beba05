/**
 * Persistence and recovery (README "Recovery"): never falsely duplex after a
 * restart, change recording kept, the kill -9 test with a real child process,
 * and PP-40 (fsyncOnAck).
 */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PprcManager } from '../../../src/copy/pprc/index.js';
import { BitmapJournal } from '../../../src/store/bitmap-journal.js';
import { Pool } from '../../../src/store/pool.js';
import type { Volume } from '../../../src/volume/volume.js';
import { runUntilKilled } from '../../helpers/kill-child.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { tempDirs } from '../../helpers/temp-dir.js';
import { MiB, TRACK, closeAll, closeEss, duplexPair, pattern, peek, settle, site } from './harness.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/pprc-crash-writer.mjs');
const temp = tempDirs('lunrig-pprc-kill-');

afterEach(async () => {
  await closeAll();
  temp.cleanup();
});

describe('PPRC recovery', () => {
  it('a DUPLEX pair comes back SUSPENDED (restart) after a restart, with the HOT regions written recently out of sync; resync makes it identical', async () => {
    const s = await site({ pprc: { hotRegionTracks: 4 } });
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    for (const t of [1, 5, 9]) await p.write(t * TRACK, pattern(t, t * TRACK));
    await s.restartE1();
    const q = s.e1.pprc.query('p');
    expect(q).toMatchObject({ state: 'SUSPENDED', suspendReason: 'restart', role: 'source' });
    expect(s.e1.pprc.recovery.suspended).toEqual([q.pair!.id]);
    // HOT regions (mirror writes not yet lazily cleared), whole, are treated as possibly out of sync.
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    await s.e1.pprc.waitForCopy('p');
    expect((await s.e1.pprc.audit('p')).differing).toEqual([]);
  });

  it('a HOT region is cleared once no mirror write touched it for hotQuietMs; a region written since keeps its mark', async () => {
    const s = await site({ pprc: { hotRegionTracks: 4, hotQuietMs: 1000 } });
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    for (const t of [1, 2, 5]) await p.write(t * TRACK, pattern(t, t * TRACK));
    await s.clock.advance(600);
    await p.write(6 * TRACK, pattern(6, 6 * TRACK));
    await s.clock.advance(600);
    // Region 0 has been quiet 1200 ms, region 1 600 ms: this write's sweep clears region 0 only.
    await p.write(9 * TRACK, pattern(9, 9 * TRACK));
    await settle();
    await s.restartE1();
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('bad HOT-region options are refused with INVALID_ARGUMENT', async () => {
    const pool = await Pool.open({ dir: path.join(temp.make(), 'pool'), engine: 'fs' });
    try {
      for (const bad of [{ hotRegionTracks: 0 }, { hotRegionTracks: 1.5 }, { hotQuietMs: -1 }, { hotQuietMs: Number.NaN }]) {
        await expect(PprcManager.open(pool, bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      }
    } finally {
      await pool.close();
    }
  });

  it('a SUSPENDED pair keeps its recorded tracks, reason and write-inhibit across a restart; the secondary keeps its role', async () => {
    const s = await site();
    const [l1] = await duplexPair(s, { criticalVolume: true });
    await s.e1.pprc.suspend('p');
    for (const t of [0, 15]) await s.e1.pool.volume('p').write(t * TRACK, pattern(t, t * TRACK));
    await s.restartE1();
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'manual-source', writeInhibited: false });
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([0, 15]);
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    await s.e1.pprc.waitForCopy('p');
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await s.e1.pool.volume('p').write(0, pattern(1, 0)).catch(() => undefined);
    expect(s.e1.pprc.query('p').writeInhibited).toBe(true);
    await s.restartE1();
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'paths-lost', writeInhibited: true });
    // E2 restarted too: its secondary is still bound and gated.
    await closeEss(s.e2);
    const pool2 = await Pool.open({ dir: s.e2.dir });
    const pprc2 = await PprcManager.open(pool2);
    try {
      expect(pprc2.query('s')).toMatchObject({ role: 'target', suspended: true });
      await expect(pool2.volume('s').read(0, 4096)).rejects.toMatchObject({ code: 'PPRC_SECONDARY_NOT_ACCESSIBLE' });
    } finally {
      await pprc2.close();
      await pool2.close();
    }
  });

  const variants = [
    { fsyncOnAck: false, mode: 'duplex', durability: 'process' },
    { fsyncOnAck: true, mode: 'duplex', durability: 'process' },
    { fsyncOnAck: false, mode: 'suspended', durability: 'process' },
    { fsyncOnAck: false, mode: 'duplex', durability: 'power' },
  ] as const;
  for (const { fsyncOnAck, mode, durability } of variants) {
    it(`kill -9 during ${mode} writes${fsyncOnAck ? ' with fsyncOnAck (PP-40)' : ''}, '${durability}' durability: never falsely duplex, no acknowledged write missing${mode === 'duplex' ? ' on either side' : ''}, resync makes them identical`, { timeout: 60_000 }, async () => {
      const seed = testSeed(`pprc-kill9-${mode}${fsyncOnAck ? '-fsync' : ''}-${durability}`, fsyncOnAck ? 0x40 : mode === 'duplex' ? (durability === 'power' ? 0x19 : 0x9) : 0x5);
      const rand = seededRandom(seed);
      const dir1 = temp.make();
      const dir2 = temp.make();
      {
        const e1 = await Pool.open({ dir: dir1, serial: 'FCA24', engine: 'fs' });
        const e2 = await Pool.open({ dir: dir2, serial: 'FCA31', engine: 'fs' });
        await e1.createLun({ name: 'p', size: MiB, lss: 0x10 });
        await e2.createLun({ name: 's', size: MiB, lss: 0x10 });
        const p2 = await PprcManager.open(e2);
        const p1 = await PprcManager.open(e1);
        p1.addEss(p2.asSecondary());
        await p1.addLink({ id: 'l1', to: 'FCA31' });
        await p1.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['l1'] });
        await p1.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
        await p1.waitForCopy('p');
        await p1.close();
        await p2.close();
        await e1.close();
        await e2.close();
      }
      const acks = 40 + Math.floor(rand() * 200);
      const log = await runUntilKilled(['--import', 'tsx', FIXTURE, dir1, dir2, String(seed), fsyncOnAck ? '1' : '0', mode, durability], /^a /gm, acks);
      // Per block: the last acknowledged byte, and bytes issued after it (in flight at the kill).
      const acked = new Map<number, number>();
      const inflight = new Map<number, number>();
      for (const line of log.split('\n')) {
        const m = /^([wa]) (\d+) (\d+)$/.exec(line);
        if (!m) continue;
        const [off, byte] = [Number(m[2]), Number(m[3])];
        if (m[1] === 'w') inflight.set(off, byte);
        else {
          acked.set(off, byte);
          inflight.delete(off);
        }
      }
      expect(acked.size).toBeGreaterThan(10);
      const e2 = await Pool.open({ dir: dir2, engine: 'fs' });
      const e1 = await Pool.open({ dir: dir1, engine: 'fs' });
      const pprc2 = await PprcManager.open(e2);
      const pprc1 = await PprcManager.open(e1);
      try {
        pprc1.addEss(pprc2.asSecondary());
        expect(pprc1.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: mode === 'duplex' ? 'restart' : 'manual-source' });
        const ok = (content: Buffer, off: number): boolean => {
          const allowed = [acked.get(off), inflight.get(off)].filter((b) => b !== undefined);
          return allowed.some((b) => content.every((x) => x === b));
        };
        const ess1 = { pool: e1 } as never;
        const ess2 = { pool: e2 } as never;
        for (const off of new Set([...acked.keys()])) {
          expect(ok(await peek(ess1, 'p', off, 4096), off), `P block ${off}`).toBe(true);
          // W1: in duplex an acknowledged write is on the secondary too.
          if (mode === 'duplex') expect(ok(await peek(ess2, 's', off, 4096), off), `S block ${off}`).toBe(true);
        }
        await pprc1.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
        await pprc1.waitForCopy('p');
        expect((await pprc1.audit('p')).differing).toEqual([]);
        expect((await peek(ess2, 's')).equals(await peek(ess1, 'p'))).toBe(true);
      } finally {
        await pprc1.close();
        await pprc2.close();
        await e1.close();
        await e2.close();
      }
    });
  }
});

describe('PPRC durability of the track marks', () => {
  type Journal = { append(records: readonly unknown[], sync: boolean): Promise<void> };
  const proto = BitmapJournal.prototype as unknown as Journal;

  /** Log journal appends (records, fdatasync or not), the secondary's and the primary's writes and flushes, in order. */
  function trace(s: Awaited<ReturnType<typeof site>>): string[] {
    const log: string[] = [];
    const append = proto.append;
    vi.spyOn(proto, 'append').mockImplementation(function (this: Journal, records, sync) {
      log.push(`journal ${records.length}${sync ? ' fdatasync' : ''}`);
      return append.call(this, records, sync);
    });
    const spy = (v: Volume, who: string): void => {
      const write = v.write.bind(v);
      const flush = v.flush.bind(v);
      vi.spyOn(v, 'write').mockImplementation((offset, data, options) => {
        log.push(`${who} write${options?.fua ? ' fua' : ''}`);
        return write(offset, data, options);
      });
      vi.spyOn(v, 'flush').mockImplementation(() => {
        log.push(`${who} flush`);
        return flush();
      });
    };
    spy(s.e2.pool.volume('s'), 'secondary');
    spy((s.e1.pool.volume('p').current as unknown as { below: Volume }).below, 'primary');
    return log;
  }

  afterEach(() => vi.restoreAllMocks());

  it("'process' (default): a HOT mark is written, not fdatasynced, before the mirror write leaves; a hot track is not marked again; FUA and host flush fdatasync the journal first", async () => {
    const s = await site({ pprc: { hotRegionTracks: 1 } });
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    const log = trace(s);
    await p.write(3 * TRACK, pattern(1, 3 * TRACK));
    expect(log.splice(0)).toEqual(['journal 1', 'secondary write', 'primary write']);
    await p.write(3 * TRACK + 4096, pattern(2, 3 * TRACK + 4096));
    expect(log.splice(0)).toEqual(['secondary write', 'primary write']);
    // A write over three tracks, one of them hot: one record for the two new ones (a contiguous range).
    await p.write(3 * TRACK, Buffer.alloc(3 * TRACK, 7));
    expect(log.splice(0)).toEqual(['journal 1', 'secondary write', 'primary write']);
    await p.write(9 * TRACK, pattern(3, 9 * TRACK), { fua: true });
    expect(log.splice(0)).toEqual(['journal 1', 'journal 0 fdatasync', 'secondary write fua', 'primary write fua']);
    await p.write(11 * TRACK, pattern(4, 11 * TRACK));
    await p.flush();
    expect(log.splice(0)).toEqual(['journal 1', 'secondary write', 'primary write', 'journal 0 fdatasync', 'primary flush', 'secondary flush']);
    // Suspended: the OOS mark, written before the write it records.
    await s.e1.pprc.suspend('p');
    log.splice(0);
    await p.write(13 * TRACK, pattern(5, 13 * TRACK));
    expect(log.splice(0)).toEqual(['journal 1', 'primary write']);
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([13]);
  });

  it("'power': every new mark is fdatasynced before the write it covers", async () => {
    const s = await site({ pprc: { durability: 'power', hotRegionTracks: 1 } });
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    const log = trace(s);
    await p.write(3 * TRACK, pattern(1, 3 * TRACK));
    expect(log.splice(0)).toEqual(['journal 1 fdatasync', 'secondary write', 'primary write']);
    await p.write(3 * TRACK, pattern(2, 3 * TRACK));
    expect(log.splice(0)).toEqual(['secondary write', 'primary write']);
    await s.e1.pprc.suspend('p');
    log.splice(0);
    await p.write(5 * TRACK, pattern(3, 5 * TRACK));
    expect(log.splice(0)).toEqual(['journal 1 fdatasync', 'primary write']);
  });

  it("'process': HOT bits are cleared with journal records (no volume flush, no checkpoint) and a restart folds only what is still hot", async () => {
    const s = await site({ pprc: { hotRegionTracks: 1, hotQuietMs: 1000 } });
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    const log = trace(s);
    for (const t of [1, 2]) await p.write(t * TRACK, pattern(t, t * TRACK));
    await s.clock.advance(1000);
    await p.write(3 * TRACK, pattern(3, 3 * TRACK));
    await settle();
    expect(log.filter((l) => l.endsWith('flush'))).toEqual([]);
    // Three set records and one clear record of the two quiet tracks (one range).
    expect(log.filter((l) => l.startsWith('journal'))).toEqual(['journal 1', 'journal 1', 'journal 1', 'journal 1']);
    await s.restartE1();
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([3]);
  });

  it("'power': a quiet HOT region is cleared only after both sides were flushed", async () => {
    const s = await site({ pprc: { durability: 'power', hotRegionTracks: 1, hotQuietMs: 1000 } });
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    const log = trace(s);
    await p.write(1 * TRACK, pattern(1, 1 * TRACK));
    await s.clock.advance(1000);
    log.splice(0);
    await p.write(3 * TRACK, pattern(3, 3 * TRACK));
    // The restart's close waits for the sweep this write started.
    await s.restartE1();
    expect(log.indexOf('primary flush')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('secondary flush')).toBeGreaterThan(log.indexOf('primary flush'));
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([3]);
  });
});
