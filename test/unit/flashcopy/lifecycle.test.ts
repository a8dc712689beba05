/** FlashCopy relationship lifecycle (spec §2.0, §2.4-§2.8): T0, auto-end, withdraw, NOCOPY, groups, rates, restart, queries. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlashCopyManager, type RelationshipInfo } from '../../../src/copy/flashcopy/index.js';
import { transition } from '../../../src/copy/flashcopy/state-machine.js';
import { BLOCK, GiB, KiB, MiB, closeRigs, drive, expectCode, expectedPattern, fillPattern, nextEvent, readBuf, rig, uniform } from './harness.js';

afterEach(closeRigs);

const P = 1;
const Q = 2;
const GRAIN = 64 * KiB;

describe('establish', () => {
  it('FC-02: with background copy at rate 0, establish time does not grow with volume size (1 GiB vs 64 GiB < 2x); all tracks remain', async () => {
    const r = await rig({
      luns: [
        { name: 's1', size: GiB },
        { name: 't1', size: GiB },
        { name: 's64', size: 64 * GiB },
        { name: 't64', size: 64 * GiB },
      ],
    });
    const once = async (s: string, t: string): Promise<number> => {
      const start = process.hrtime.bigint();
      const info = await r.fc.establish(s, t, { rate: 0 });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      expect(info.progress.remainingGrains).toBe(info.progress.grains);
      await r.fc.withdraw(s);
      return ms;
    };
    await once('s1', 't1'); // warm-up
    // Interleaved, so both sizes see the same disk and CPU load; the best of each is the establish cost without fsync jitter.
    let small = Infinity;
    let large = Infinity;
    for (let i = 0; i < 9; i++) {
      small = Math.min(small, await once('s1', 't1'));
      large = Math.min(large, await once('s64', 't64'));
    }
    console.log(`[FC-02] establish: 1 GiB ${small.toFixed(2)} ms, 64 GiB ${large.toFixed(2)} ms`);
    expect(large).toBeLessThan(2 * small);
    const info = await r.fc.establish('s64', 't64', { rate: 0 });
    expect(info.progress).toMatchObject({ grains: (64 * GiB) / GRAIN, remainingGrains: (64 * GiB) / GRAIN, copiedGrains: 0, etaSeconds: null });
  });

  it('FX1/FX2: the relationship is `establishing` until T0, and a second establish on the pair waits and is then refused', async () => {
    const r = await rig({ luns: ['s', 't', 'u'].map((name) => ({ name, size: 8 * MiB })), manager: { establishDelayMs: 3000 } });
    const first = r.fc.establish('s', 't', { rate: 0 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(r.fc.list()[0]).toMatchObject({ state: 'establishing', source: 's', target: 't' });
    expect(r.fc.query('s').role).toBe('none'); // not yet a source: T0 has not happened
    expect(r.fc.stateOf('t')).toBe('establishing'); // what PPRC checks (CB-06)
    const second = r.fc.establish('u', 't');
    await r.clock.advance(3000);
    expect((await first).state).toBe('copying');
    await expectCode(second, 'FC_VOLUME_IN_RELATIONSHIP');
    expect([r.fc.stateOf('t'), r.fc.stateOf('u')]).toEqual(['copying', 'none']);
  });

  it('the state machine refuses edges the spec does not have (FX6: no COPY <-> NOCOPY switch; withdraw of none)', () => {
    expect(transition('none', 'establish')).toBe('establishing');
    expect(transition('copying', 'copy-complete')).toBe('terminating');
    expect(transition('copying', 'copy-complete-persistent')).toBe('copied');
    expect(() => transition('copy-on-write', 'copy-complete')).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(() => transition('none', 'withdraw')).toThrow();
  });
});

describe('end of relationship', () => {
  it('FC-09, FC-10: in COPY mode the relationship ends by itself when background copy is done; T equals S@T0 where the host did not write T, and later source writes leave T alone', async () => {
    const size = 4 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    await fillPattern(t, Q, size);
    const info = await r.fc.establish('s', 't', { rate: 0 });
    await s.write(GRAIN, uniform(5, GRAIN)); // after T0
    await t.write(2 * GRAIN, uniform(6)); // a host write to T
    const completed = nextEvent(r.fc, 'completed', info.id);
    await r.fc.setRate('t', null);
    const done = await completed;
    expect(done.state).toBe('none');
    expect(done.progress).toMatchObject({ remainingGrains: 0, percent: 100 });
    expect(r.fc.list()).toEqual([]);
    expect(r.fc.query('s').role).toBe('none');
    expect(r.fc.query('t').ess[1]).toMatch(/FlashCopy_state=none/);
    const want = expectedPattern(P, 0, size);
    uniform(6).copy(want, 2 * GRAIN);
    expect((await readBuf(t, 0, size)).equals(want)).toBe(true);
    await s.write(0, uniform(7, size));
    expect((await readBuf(t, 0, size)).equals(want)).toBe(true);
    await expectCode(r.fc.withdraw('s'), 'FC_NO_RELATIONSHIP'); // FX7, also after auto-completion
    expect(await fsp.readdir(path.join(r.dir, 'flashcopy'))).toEqual(['relationships.json']);
  });

  it('FC-12: a NOCOPY relationship stays after every track was copied on write, until withdrawn', async () => {
    const size = MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    await r.fc.establish('s', 't', { mode: 'nocopy' });
    await s.write(0, uniform(3, size));
    expect(r.fc.query('s').remainingGrains).toBe(0);
    await r.clock.advance(3_600_000);
    expect(r.fc.query('s').role).toBe('source');
    expect(r.fc.query('t').role).toBe('target');
    expect(r.fc.list()[0]).toMatchObject({ state: 'copy-on-write', progress: { remainingGrains: 0, etaSeconds: null } });
    await expectCode(r.fc.waitForCopy('s'), 'NOT_SUPPORTED');
    await r.fc.withdraw('s');
    expect(r.fc.query('s').role).toBe('none');
  });

  it('FC-13: a withdraw issued against the target alone ends the relationship; S can then go to another target', async () => {
    const r = await rig({ luns: ['s', 't', 'u'].map((name) => ({ name, size: 8 * MiB })) });
    const withdrawn = nextEvent(r.fc, 'withdrawn');
    await r.fc.establish('s', 't', { rate: 0 });
    const [ended] = await r.fc.withdraw('t');
    expect(await withdrawn).toMatchObject({ id: ended!.id });
    expect([r.fc.query('s').role, r.fc.query('t').role]).toEqual(['none', 'none']);
    await r.fc.establish('s', 'u', { rate: 0 });
    await expectCode(r.fc.withdraw('t'), 'FC_NO_RELATIONSHIP');
  });

  it('FC-19: after S->T completes, T->S COPY is accepted and at its completion S equals T as it was at that establish', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    await fillPattern(r.pool.volume('s'), P, size);
    const firstDone = nextEvent(r.fc, 'completed');
    await r.fc.establish('s', 't');
    await firstDone;
    await r.pool.volume('t').write(0, uniform(8, GRAIN)); // T's content at the reverse establish: P with one changed track
    const back = await r.fc.establish('t', 's', { rate: 0 });
    await r.pool.volume('t').write(GRAIN, uniform(9, GRAIN)); // after the reverse T0
    const done = nextEvent(r.fc, 'completed', back.id);
    await r.fc.setRate('s', null);
    await done;
    const want = expectedPattern(P, 0, size);
    uniform(8, GRAIN).copy(want, 0);
    expect((await readBuf(r.pool.volume('s'), 0, size)).equals(want)).toBe(true);
  });

  it('a LUN in a relationship cannot be deleted, nor a target made read-only; after withdraw both work', async () => {
    const r = await rig({ luns: ['s', 't'].map((name) => ({ name, size: 8 * MiB })) });
    await r.fc.establish('s', 't', { rate: 0 });
    await expectCode(r.pool.deleteLun('s'), 'FC_VOLUME_IN_RELATIONSHIP');
    await expectCode(r.pool.deleteLun('t'), 'FC_VOLUME_IN_RELATIONSHIP');
    await expectCode(r.pool.setReadOnly('t', true), 'FC_VOLUME_IN_RELATIONSHIP');
    await r.pool.setReadOnly('s', true); // the source may be: FlashCopy never writes it
    await expectCode(r.pool.volume('s').write(0, uniform(1)), 'READ_ONLY');
    expect(r.fc.query('s').remainingGrains).toBe((8 * MiB) / GRAIN); // nothing was copied for the refused write
    await r.pool.growLun('t', 16 * MiB);
    await r.fc.withdraw('s');
    await r.pool.deleteLun('t');
  });
});

describe('consistency groups', () => {
  it('FC-22: six pairs in one LSS get one T0, all before establishGroup returns; host writes after it do not reach the targets', async () => {
    const size = MiB;
    const names = Array.from({ length: 6 }, (_, i) => i);
    const r = await rig({ luns: names.flatMap((i) => [{ name: `s${i}`, size }, { name: `t${i}`, size }]) });
    for (const i of names) await fillPattern(r.pool.volume(`s${i}`), P + i, size);
    const group = await r.fc.establishGroup({ name: 'fc_group1', pairs: names.map((i) => ({ source: `s${i}`, target: `t${i}` })), rate: 0 });
    expect(group.relationships).toHaveLength(6);
    expect(new Set(group.relationships.map((x) => x.t0)).size).toBe(1);
    expect(r.fc.groups().map((g) => g.name)).toEqual(['fc_group1']);
    await Promise.all(names.map((i) => r.pool.volume(`s${i}`).write(0, uniform(0xee, size))));
    for (const i of names) expect((await readBuf(r.pool.volume(`t${i}`), 0, size)).equals(expectedPattern(P + i, 0, size))).toBe(true);
    await expectCode(r.fc.establishGroup({ name: 'fc_group1', pairs: [] }), 'INVALID_ARGUMENT');
    expect((await r.fc.withdrawGroup('fc_group1')).length).toBe(6);
    await expectCode(r.fc.withdrawGroup('fc_group1'), 'FC_GROUP_NOT_FOUND');
  });

  it('a group is all or nothing: one bad pair (different LSS, or a volume twice) establishes none', async () => {
    const r = await rig({
      luns: [
        { name: 'a', size: MiB },
        { name: 'b', size: MiB },
        { name: 'c', size: MiB },
        { name: 'd', size: MiB },
        { name: 'x', size: MiB, lss: '11' },
        { name: 'y', size: MiB, lss: '11' },
      ],
    });
    await expectCode(r.fc.establishGroup({ pairs: [{ source: 'a', target: 'b' }, { source: 'x', target: 'y' }] }), 'FC_DIFFERENT_LSS');
    await expectCode(r.fc.establishGroup({ pairs: [{ source: 'a', target: 'b' }, { source: 'c', target: 'b' }] }), 'FC_VOLUME_IN_RELATIONSHIP');
    expect(r.fc.list()).toEqual([]);
    const relaxed = await rig({ luns: [{ name: 'a', size: MiB }, { name: 'b', size: MiB }, { name: 'x', size: MiB, lss: '11' }, { name: 'y', size: MiB, lss: '11' }], manager: { profile: 'relaxed' } });
    const g = await relaxed.fc.establishGroup({ pairs: [{ source: 'a', target: 'b' }, { source: 'x', target: 'y' }], rate: 0 });
    expect(g.relationships.map((x) => x.relaxed)).toEqual([['cross-lss'], ['cross-lss']]);
  });
});

describe('rates, progress and bandwidth', () => {
  it('progress: tracks remaining, percent and an ETA from the rate; paused copy has no ETA; progress events arrive', async () => {
    const size = 4 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }], manager: { progressIntervalMs: 500 } });
    const info = await r.fc.establish('s', 't', { rate: MiB, grainSize: '64K' });
    expect(info.progress).toMatchObject({ grains: 64, remainingGrains: 64, percent: 0, etaSeconds: 4 });
    const progress = nextEvent(r.fc, 'progress', info.id);
    await drive(r.clock, () => r.fc.list()[0]!.progress.copiedGrains >= 32, 'half');
    expect((await progress).progress.copiedGrains).toBeGreaterThan(0);
    const half = r.fc.list()[0]!.progress;
    expect(half.percent).toBeGreaterThanOrEqual(50);
    expect(half.percent).toBeLessThan(100);
    expect(half.etaSeconds).toBeGreaterThanOrEqual(1);
    expect(half.etaSeconds).toBeLessThanOrEqual(3);
    const paused = await r.fc.setRate('s', 0);
    expect(paused.progress.etaSeconds).toBeNull();
    // A batch already under way when the rate dropped may still land; after that nothing moves.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const copied = r.fc.list()[0]!.progress.copiedGrains;
    await r.clock.advance(10_000);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(r.fc.list()[0]!.progress.copiedGrains).toBe(copied);
  });

  it('FC-24: with a fixed background-copy bandwidth, four COPY relationships at once take longer per pair than one alone', async () => {
    const size = MiB;
    const names = [0, 1, 2, 3, 4];
    const r = await rig({ luns: names.flatMap((i) => [{ name: `s${i}`, size }, { name: `t${i}`, size }]), manager: { bandwidth: MiB, maxBatchBytes: 128 * KiB } });
    for (const i of names) await r.pool.volume(`s${i}`).write(0, uniform(1 + i, size));
    const finish = new Map<string, number>();
    r.fc.on('completed', (info: RelationshipInfo) => finish.set(info.source, r.clock.now()));
    let start = r.clock.now();
    await r.fc.establish('s0', 't0');
    await drive(r.clock, () => finish.has('s0'), 'the lone pair');
    const alone = finish.get('s0')! - start;
    start = r.clock.now();
    // One T0 for the four, so none gets a head start while the others are still being established.
    await r.fc.establishGroup({ pairs: [1, 2, 3, 4].map((i) => ({ source: `s${i}`, target: `t${i}` })) });
    await drive(r.clock, () => [1, 2, 3, 4].every((i) => finish.has(`s${i}`)), 'four pairs');
    const times = [1, 2, 3, 4].map((i) => finish.get(`s${i}`)! - start);
    const together = Math.min(...times);
    const last = Math.max(...times);
    console.log(`[FC-24] alone ${alone} ms, four at once: first done after ${together} ms, last after ${last} ms (virtual)`);
    expect(together).toBeGreaterThan(alone);
    // The four share the one bandwidth: four times the bytes take about four times as long
    // (how evenly it is shared depends on when each copier's real I/O lands, so only the total is bounded).
    expect(last).toBeGreaterThanOrEqual(3.5 * alone);
  });
});

describe('incremental FlashCopy', () => {
  it('after background copy an incremental relationship stays, records changes on both sides, and a refresh copies only those', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    const info = await r.fc.establish('s', 't', { incremental: true });
    const completed = await nextEvent(r.fc, 'completed', info.id);
    expect(completed).toMatchObject({ state: 'copied', incremental: true, changedGrains: 0 });
    expect(r.fc.query('t').role).toBe('target');
    await s.write(3 * GRAIN + 1, uniform(4, 10));
    await s.write(3 * GRAIN + 100, uniform(4, 10));
    await s.write(10 * GRAIN, uniform(5, 2 * GRAIN)); // two grains
    await t.write(20 * GRAIN, uniform(6, BLOCK));
    expect(r.fc.list()[0]!.changedGrains).toBe(4);
    // T still shows T0 plus its own write.
    const t0 = expectedPattern(P, 0, size);
    uniform(6, BLOCK).copy(t0, 20 * GRAIN);
    expect((await readBuf(t, 0, size)).equals(t0)).toBe(true);
    const sourceNow = await readBuf(s, 0, size);
    const completedAgain = nextEvent(r.fc, 'completed', info.id);
    const refreshed = await r.fc.refresh('t');
    expect(refreshed).toMatchObject({ state: 'copying', changedGrains: 0, progress: { remainingGrains: 4 } });
    expect((await readBuf(t, 0, size)).equals(sourceNow)).toBe(true); // the new T0, at once
    await s.write(0, uniform(9, size)); // after the new T0
    const again = await completedAgain;
    expect(again.state).toBe('copied');
    expect((await readBuf(t, 0, size)).equals(sourceNow)).toBe(true);
    await expectCode(r.fc.refresh('nope'), 'LUN_NOT_FOUND');
    await r.fc.withdraw('s');
    expect(r.fc.query('t').role).toBe('none');
  });

  it('refresh of a non-incremental relationship is refused (FC_NOT_INCREMENTAL)', async () => {
    const r = await rig({ luns: ['s', 't'].map((name) => ({ name, size: MiB })) });
    await r.fc.establish('s', 't', { rate: 0 });
    await expectCode(r.fc.refresh('s'), 'FC_NOT_INCREMENTAL');
  });
});

describe('persistence', () => {
  it('FC-25: a reset of the copy-services manager (close and reopen, pool up) keeps the bitmap and the target content; meanwhile copy-on-write writes are refused, not lost', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    await fillPattern(s, P, size);
    await r.fc.establish('s', 't', { mode: 'nocopy' });
    for (const g of [1, 5, 9]) await s.write(g * GRAIN, uniform(3, BLOCK));
    const before = r.fc.list()[0]!;
    await r.fc.close();
    await expectCode(s.write(20 * GRAIN, uniform(4)), 'CLOSED'); // would need a copy-on-write: refused
    await s.write(GRAIN + BLOCK, uniform(4)); // track 1 is already copied: fine
    r.fc = await FlashCopyManager.open(r.pool, { clock: r.clock });
    expect(r.fc.recovery.resumed).toEqual([before.id]);
    expect(r.fc.list()[0]).toMatchObject({ id: before.id, t0: before.t0, progress: before.progress });
    expect((await readBuf(r.pool.volume('t'), 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
  });

  it('FX8: after the pool and manager reopen, the relationship resumes from its persisted bitmap and copy-on-write still protects T0', async () => {
    const size = 4 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    await fillPattern(r.pool.volume('s'), P, size);
    const info = await r.fc.establish('s', 't', { rate: 4 * GRAIN, grainSize: '64K' });
    await drive(r.clock, () => r.fc.list()[0]!.progress.copiedGrains >= 10, 'some copied');
    await r.pool.volume('s').write(40 * GRAIN, uniform(1, GRAIN));
    const copied = r.fc.list()[0]!.progress.copiedGrains;
    await r.reopen({ pool: true });
    const resumed = r.fc.list()[0]!;
    expect(resumed.id).toBe(info.id);
    expect(resumed.progress.copiedGrains).toBeGreaterThanOrEqual(copied);
    await r.pool.volume('s').write(50 * GRAIN, uniform(2, GRAIN));
    expect((await readBuf(r.pool.volume('t'), 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
    const done = nextEvent(r.fc, 'completed', info.id);
    await r.fc.setRate('s', null);
    await done;
    expect((await readBuf(r.pool.volume('t'), 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
  });

  it('leftover bitmap files are removed on open; a relationship whose LUN was deleted while no manager watched is dropped and reported', async () => {
    const r = await rig({ luns: ['s', 't', 'u', 'v'].map((name) => ({ name, size: MiB })) });
    await r.fc.establish('s', 't', { rate: 0 });
    const gone = await r.fc.establish('u', 'v', { rate: 0 });
    await r.fc.close();
    await fsp.writeFile(path.join(r.dir, 'flashcopy', 'fc99.journal'), '');
    await r.pool.deleteLun('v'); // no manager, no veto
    r.fc = await FlashCopyManager.open(r.pool, { clock: r.clock });
    expect(r.fc.recovery.dropped).toEqual([{ id: gone.id, reason: expect.stringContaining("'v'") }]);
    expect(r.fc.list().map((x) => x.source)).toEqual(['s']);
    const files = await fsp.readdir(path.join(r.dir, 'flashcopy'));
    expect(files.sort()).toEqual(['fc1.journal', 'relationships.json']);
    expect(r.fc.query('u').role).toBe('none');
  });
});

describe('queries', () => {
  it('ESS query strings: rsQuery lines and the summary line per role (CP-01 format, spec §2.6)', async () => {
    const r = await rig({ luns: [{ name: 's', size: '20G' }, { name: 't', size: '20G' }, { name: 'x', size: GiB, lss: '11' }] });
    await r.fc.establish('s', 't', { rate: 0 });
    expect(r.fc.query('s').ess).toEqual(['Volume 000FCA24 found on FCA24:10 as volume number 000', 'State=simplex, status=not_suspended, FlashCopy_state=source, Size=20.0_GB']);
    expect(r.fc.query('t').ess[1]).toBe('State=simplex, status=not_suspended, FlashCopy_state=target, Size=20.0_GB');
    expect(r.fc.query('x')).toMatchObject({
      role: 'none',
      ess: ['Volume 100FCA24 found on FCA24:11 as volume number 000', 'State=simplex, status=not_suspended, FlashCopy_state=none, Size=1.0_GB'],
      summary: '000 100FCA24 nolabel simplex, notFlashCopy, not_suspended',
    });
    expect(r.fc.query('t').summary).toBe('001 001FCA24 nolabel simplex, FlashCopyTarget, not_suspended');
    await expectCode(() => r.fc.query('nope'), 'LUN_NOT_FOUND');
  });

  it('list and query report the relationship as the API promises', async () => {
    const r = await rig({ luns: ['s', 't'].map((name) => ({ name, size: 8 * MiB })) });
    const info = await r.fc.establish('s', 't', { mode: 'nocopy', grainSize: '256K' });
    expect(info).toMatchObject({
      id: 'fc1',
      source: 's',
      target: 't',
      mode: 'nocopy',
      incremental: false,
      state: 'copy-on-write',
      grainSize: 256 * KiB,
      size: 8 * MiB,
      rate: null,
      profile: 'strict',
      relaxed: [],
      group: null,
      progress: { grains: 32, copiedGrains: 0, remainingGrains: 32, bytesRemaining: 8 * MiB, percent: 0, etaSeconds: null },
    });
    expect(info.t0).toBe(new Date(r.clock.now()).toISOString());
    expect(r.fc.query('s')).toMatchObject({ volume: 's', role: 'source', remainingGrains: 32 });
    expect(r.fc.query('t')).toMatchObject({ role: 'target', remainingGrains: 0 });
  });
});
