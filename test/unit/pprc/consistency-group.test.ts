/** Consistency groups and freeze (spec §3.9): PP-38. */
import { afterEach, describe, expect, it } from 'vitest';
import { TRACK, closeAll, connect, isSettled, pattern, peek, site, until, type Site } from './harness.js';

afterEach(closeAll);

async function twoGroups(s: Site): Promise<void> {
  await s.e1.pprc.setLss(0x10, { consistencyGroup: true, consistencyTimeoutSec: 5 });
  await s.e1.pprc.setLss(0x11, { consistencyGroup: true, consistencyTimeoutSec: 5 });
  const [l1] = await connect(s);
  await s.e1.pprc.establishPath({ lss: 0x11, to: 'FCA31', targetLss: 0x11, links: [l1!] });
  await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
  await s.e1.pprc.establish({ primary: 'p2', secondary: { ess: 'FCA31', volume: 'u' }, mode: 'no-copy' });
}

describe('PPRC consistency groups', () => {
  it('PP-38 after a device failure P1 writes are held within the timeout; freeze suspends P2 before any is released; "P1 then P2" never shows P2 without P1', async () => {
    const s = await site();
    await twoGroups(s);
    s.e2.pprc.setSecondaryDeviceFault('s', true);
    const p1 = s.e1.pool.volume('p');
    const p2 = s.e1.pool.volume('p2');
    const w1 = p1.write(TRACK, pattern(1, TRACK));
    await until(() => s.e1.pprc.query('p').state === 'SUSPENDED', 'P1 suspended');
    expect(await isSettled(w1)).toBe(false);
    await s.clock.advance(4000);
    expect(await isSettled(w1)).toBe(false);
    const later = p1.write(2 * TRACK, pattern(2, 2 * TRACK));
    expect(await isSettled(later)).toBe(false);
    // P2 is still DUPLEX: a write to it now would be mirrored.
    expect(s.e1.pprc.query('p2').state).toBe('DUPLEX');
    const frozen = await s.e1.pprc.freeze([0x10, 0x11]);
    expect(frozen.map((i) => [i.primary.volume, i.state])).toEqual([
      ['p', 'SUSPENDED'],
      ['p2', 'SUSPENDED'],
    ]);
    expect(s.e1.pprc.query('p2').suspendReason).toBe('freeze');
    expect(await isSettled(w1)).toBe(false);
    await s.e1.pprc.release([0x10, 0x11]);
    await w1;
    await later;
    // The dependent write, issued only after P1's completed.
    await p2.write(TRACK, pattern(3, TRACK));
    expect((await peek(s.e2, 'u', TRACK, 4096)).equals(pattern(3, TRACK))).toBe(false);
    expect((await peek(s.e2, 's', TRACK, 4096)).equals(pattern(1, TRACK))).toBe(false);
    // Both were recorded (Critical Volume off) and resync carries them.
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([1, 2]);
    expect(s.e1.pprc.outOfSyncTracks('p2')).toEqual([1]);
  });

  it('PP-38 without a freeze the consistency timeout releases the held writes (then the CRIT table applies)', async () => {
    const s = await site();
    await twoGroups(s);
    s.e2.pprc.setSecondaryDeviceFault('s', true);
    const w1 = s.e1.pool.volume('p').write(0, pattern(4, 0));
    await until(() => s.e1.pprc.query('p').state === 'SUSPENDED', 'P1 suspended');
    await s.clock.advance(4999);
    expect(await isSettled(w1)).toBe(false);
    await s.clock.advance(1);
    await w1;
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', oosTracks: 1 });
    expect(s.e1.pprc.query('p2').state).toBe('DUPLEX');
  });
});
