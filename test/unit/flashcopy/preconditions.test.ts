/** Establish preconditions F-P1..F-P10 (spec §2.2): each refusal is typed and changes nothing. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkEstablish, type VolumeFacts } from '../../../src/copy/flashcopy/preconditions.js';
import { STRICT_PROFILE } from '../../../src/copy/flashcopy/profile.js';
import { FlashCopyManager } from '../../../src/copy/flashcopy/index.js';
import { GiB, MiB, closeRigs, expectCode, rig, type Rig } from './harness.js';

afterEach(closeRigs);

/** Nothing changed: no relationship, no role, nothing new on disk beyond the empty registry dir. */
async function expectUnchanged(r: Rig, ...volumes: string[]): Promise<void> {
  expect(r.fc.list()).toEqual([]);
  for (const v of volumes) expect(r.fc.query(v).role).toBe('none');
  const files = await fsp.readdir(path.join(r.dir, 'flashcopy'));
  expect(files.filter((f) => f.endsWith('.journal') || f.endsWith('.ckpt'))).toEqual([]);
}

describe('establish preconditions', () => {
  it('FC-15 / F-P1: source in LSS 0x10 and target in 0x11 is refused with FC_DIFFERENT_LSS; both stay none', async () => {
    const r = await rig({ luns: [{ name: 's', size: GiB }, { name: 't', size: GiB, lss: '11' }] });
    await expectCode(r.fc.establish('s', 't'), 'FC_DIFFERENT_LSS');
    await expectUnchanged(r, 's', 't');
    expect(r.fc.query('s').ess[1]).toContain('FlashCopy_state=none');
  });

  it('FC-16 / F-P2: a target one block smaller is refused (FC_TARGET_TOO_SMALL); equal and larger targets are accepted', async () => {
    const r = await rig({
      luns: [
        { name: 's', size: GiB },
        { name: 'small', size: GiB - 512 },
        { name: 'equal', size: GiB },
        { name: 's2', size: GiB },
        { name: 'large', size: 2 * GiB },
      ],
    });
    await expectCode(r.fc.establish('s', 'small'), 'FC_TARGET_TOO_SMALL');
    await expectUnchanged(r, 's', 'small');
    await r.fc.establish('s', 'equal', { rate: 0 });
    await r.fc.establish('s2', 'large', { rate: 0 });
    expect(r.fc.list().map((x) => `${x.source}->${x.target}`)).toEqual(['s->equal', 's2->large']);
  });

  it('FC-18 / F-P3: while S->T is active, S->U, U->T, T->U (cascade) and U->S are refused with FC_VOLUME_IN_RELATIONSHIP and change nothing', async () => {
    const r = await rig({ luns: ['s', 't', 'u'].map((name) => ({ name, size: 64 * MiB })) });
    await r.fc.establish('s', 't', { rate: 0 });
    const before = r.fc.list();
    for (const [a, b] of [['s', 'u'], ['u', 't'], ['t', 'u'], ['u', 's']] as const) await expectCode(r.fc.establish(a, b), 'FC_VOLUME_IN_RELATIONSHIP');
    expect(r.fc.list()).toEqual(before);
    expect(r.fc.query('u').role).toBe('none');
  });

  it('FC-19 (first half): while S->T is active the reverse T->S is refused', async () => {
    const r = await rig({ luns: ['s', 't'].map((name) => ({ name, size: 64 * MiB })) });
    await r.fc.establish('s', 't', { rate: 0 });
    await expectCode(r.fc.establish('t', 's'), 'FC_VOLUME_IN_RELATIONSHIP');
  });

  it('FC-20 / F-P5: an online target is refused with FC_TARGET_ONLINE unless permitIfTargetOnline is set', async () => {
    const online = new Set(['t']);
    const r = await rig({ luns: ['s', 't'].map((name) => ({ name, size: 64 * MiB })), manager: { isOnline: (lun) => online.has(lun) } });
    await expectCode(r.fc.establish('s', 't'), 'FC_TARGET_ONLINE');
    await expectUnchanged(r, 's', 't');
    const info = await r.fc.establish('s', 't', { permitIfTargetOnline: true, rate: 0 });
    expect(info.permitIfTargetOnline).toBe(true);
  });

  it('FC-21 / F-P4: FlashCopy to or from a CKD volume (LSS below 0x10) is refused, and within a non-FB LSS too', () => {
    const fb: VolumeFacts = { name: 'fb', lss: 0x10, size: GiB, readOnly: false, online: false };
    const ckd: VolumeFacts = { name: 'ckd', lss: 0x02, size: GiB, readOnly: false, online: false };
    const rules = { profile: STRICT_PROFILE, relax: [], permitIfTargetOnline: false };
    expect(() => checkEstablish(fb, ckd, [], rules)).toThrow(expect.objectContaining({ code: 'FC_NOT_FIXED_BLOCK' }));
    expect(() => checkEstablish({ ...ckd, name: 'ckd2' }, ckd, [], rules)).toThrow(expect.objectContaining({ code: 'FC_NOT_FIXED_BLOCK' }));
    expect(() => checkEstablish(fb, { ...fb, name: 'fb2' }, [], rules)).not.toThrow();
  });

  it('F-P7: source and target the same volume (FC_SAME_VOLUME), or a volume that does not exist (LUN_NOT_FOUND)', async () => {
    const r = await rig({ luns: [{ name: 's', size: 64 * MiB }] });
    await expectCode(r.fc.establish('s', 's'), 'FC_SAME_VOLUME');
    await expectCode(r.fc.establish('s', 'nope'), 'LUN_NOT_FOUND');
    await expectUnchanged(r, 's');
  });

  it('F-P6: without the FlashCopy licence every establish is refused (FC_NOT_LICENSED)', async () => {
    const r = await rig({ luns: ['s', 't'].map((name) => ({ name, size: 64 * MiB })), manager: { profile: { licensed: false } } });
    await expectCode(r.fc.establish('s', 't'), 'FC_NOT_LICENSED');
  });

  it('F-P8 (opt-in): with checkTargetSpace, a target the filesystem could not fill is refused (FC_TARGET_NO_SPACE)', async () => {
    const r = await rig({ luns: [{ name: 's', size: '64T' }, { name: 't', size: '64T' }], manager: { profile: { checkTargetSpace: true } } });
    await expectCode(r.fc.establish('s', 't'), 'FC_TARGET_NO_SPACE');
  });

  it('F-P10 / CB-07: FlashCopy onto a PPRC secondary (or primary), or from a PPRC primary, is refused (FC_UNSUPPORTED_COMBINATION) unless the permissive flag is set', async () => {
    const roles: Record<string, 'primary' | 'secondary'> = { sd: 'secondary', p: 'primary' };
    const luns = ['x', 'sd', 'p', 'y'].map((name) => ({ name, size: 64 * MiB }));
    const r = await rig({ luns, manager: { pprcRole: (lun) => roles[lun] } });
    await expectCode(r.fc.establish('x', 'sd'), 'FC_UNSUPPORTED_COMBINATION');
    await expectCode(r.fc.establish('x', 'p'), 'FC_UNSUPPORTED_COMBINATION');
    await expectCode(r.fc.establish('p', 'x'), 'FC_UNSUPPORTED_COMBINATION');
    await expectUnchanged(r, 'x', 'sd', 'p');
    const permissive = await rig({ luns, manager: { pprcRole: (lun) => roles[lun], profile: { allowUnsupportedCombinations: true } } });
    await permissive.fc.establish('x', 'sd', { rate: 0 });
  });

  it('CB-04 (FlashCopy side): a PPRC secondary may be a FlashCopy source when the target is in its LSS, and not across LSSs', async () => {
    const r = await rig({
      luns: [
        { name: 'sd', size: 64 * MiB },
        { name: 't', size: 64 * MiB },
        { name: 'far', size: 64 * MiB, lss: '11' },
      ],
      manager: { pprcRole: (lun) => (lun === 'sd' ? 'secondary' : undefined) },
    });
    await expectCode(r.fc.establish('sd', 'far'), 'FC_DIFFERENT_LSS');
    expect((await r.fc.establish('sd', 't', { rate: 0 })).source).toBe('sd');
  });

  it('a read-only target is refused (READ_ONLY: FlashCopy writes the target)', async () => {
    const r = await rig({ luns: [{ name: 's', size: 64 * MiB }, { name: 't', size: 64 * MiB, readOnly: true }] });
    await expectCode(r.fc.establish('s', 't'), 'READ_ONLY');
  });

  it('grain size: a power of two from 4K to 1M, default 64K; anything else is INVALID_ARGUMENT; NOCOPY cannot be incremental', async () => {
    const r = await rig({ luns: ['a', 'b', 'c', 'd'].map((name) => ({ name, size: 64 * MiB })) });
    for (const grainSize of ['2K', '3K', '2M', 96 * 1024]) await expectCode(r.fc.establish('a', 'b', { grainSize }), 'INVALID_ARGUMENT');
    await expectCode(r.fc.establish('a', 'b', { mode: 'nocopy', incremental: true }), 'INVALID_ARGUMENT');
    expect((await r.fc.establish('a', 'b', { grainSize: '4K', rate: 0 })).grainSize).toBe(4096);
    expect((await r.fc.establish('c', 'd', { rate: 0 })).grainSize).toBe(65536);
    await r.fc.withdraw('a');
    expect((await r.fc.establish('a', 'b', { grainSize: '1M', rate: 0 })).grainSize).toBe(1 << 20);
  });
});

describe('relaxed profile', () => {
  it('relaxing same-LSS lets a cross-LSS pair in, and the query says so (JSON and ESS lines)', async () => {
    const r = await rig({ luns: [{ name: 's', size: 64 * MiB }, { name: 't', size: 64 * MiB, lss: '11' }], manager: { profile: 'relaxed' } });
    const info = await r.fc.establish('s', 't', { rate: 0 });
    expect(info).toMatchObject({ profile: 'relaxed', relaxed: ['cross-lss'] });
    const q = r.fc.query('t');
    expect(q.ess[2]).toMatch(/relaxed rules: cross-lss/);
    expect(q.ess[2]).not.toMatch(/State/); // scripts grep rsQuery output for /State/
  });

  it('a relationship that needed no relaxation reports strict even under the relaxed profile; per-establish relax works under strict', async () => {
    const r = await rig({ luns: [{ name: 'a', size: 64 * MiB }, { name: 'b', size: 64 * MiB }, { name: 'c', size: 64 * MiB }, { name: 'd', size: 32 * MiB }] });
    expect((await r.fc.establish('a', 'b', { rate: 0, relax: ['cross-lss'] })).profile).toBe('strict');
    const smaller = await r.fc.establish('c', 'd', { rate: 0, relax: ['smaller-target'] });
    expect(smaller).toMatchObject({ profile: 'relaxed', relaxed: ['smaller-target'], size: 32 * MiB });
    await expectCode(r.fc.establish('a', 'c', { relax: ['bogus' as never] }), 'INVALID_ARGUMENT');
  });

  it('multiple targets: one source copies on write to both; a volume is still never a target twice or a cascade', async () => {
    const r = await rig({ luns: ['s', 't1', 't2', 'u'].map((name) => ({ name, size: 8 * MiB })), manager: { profile: { relax: ['multiple-targets'] } } });
    const s = r.pool.volume('s');
    await s.write(0, Buffer.alloc(MiB, 7));
    await r.fc.establish('s', 't1', { mode: 'nocopy' });
    const second = await r.fc.establish('s', 't2', { mode: 'nocopy' });
    expect(second.relaxed).toEqual(['multiple-targets']);
    await s.write(0, Buffer.alloc(4096, 9));
    for (const t of ['t1', 't2']) {
      expect(Buffer.from(await r.pool.volume(t).read(0, 4096)).every((b) => b === 7)).toBe(true);
      expect(Buffer.from(await r.pool.getLun(t).read(0, 4096)).every((b) => b === 7)).toBe(true); // copied on write, physically
    }
    await expectCode(r.fc.establish('u', 't1'), 'FC_VOLUME_IN_RELATIONSHIP');
    await expectCode(r.fc.establish('t1', 'u'), 'FC_VOLUME_IN_RELATIONSHIP');
    expect(r.fc.query('s').relationships).toHaveLength(2);
    await expectCode(r.fc.refresh('s'), 'INVALID_ARGUMENT'); // ambiguous: name the target
    expect((await r.fc.withdraw('s')).map((x) => x.target).sort()).toEqual(['t1', 't2']);
    expect(r.fc.query('s').role).toBe('none');
  });
});

it('a manager can be opened on a pool that has no FlashCopy state yet, and twice in a row', async () => {
  const r = await rig({ luns: [] });
  await r.fc.close();
  r.fc = await FlashCopyManager.open(r.pool, { clock: r.clock });
  expect(r.fc.list()).toEqual([]);
});
