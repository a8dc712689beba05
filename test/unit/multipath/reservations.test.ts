/**
 * Reservations (spec/multipath.md §1.7, MP-25, MP-31..MP-38): the array's
 * reservation engine shared by every initiator and port, and reserve_policy
 * on the host side. In-process paths: each is a ReservationGate, the I_T
 * nexus (host, port) of one target port's FaultyVolume.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { ReservationGate, ReservationTable, type Nexus } from '../../../src/hosts/index.js';
import { MultipathDevice, TargetPort, type MultipathConfig, type MultipathEvent } from '../../../src/multipath/index.js';
import { aixProfile, dmProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const data = (n = 4 * KiB, fill = 0xab): Uint8Array => new Uint8Array(n).fill(fill);

/** One LU on ports p0..pN, and a table every host's paths share. */
function array(ports = ['p0', 'p1']) {
  const clock = new VirtualClock();
  const lun = new MemoryVolume({ size: 16 * MiB, identity: { name: 'lu0' } });
  const table = new ReservationTable();
  const targetPorts = new Map(ports.map((p) => [p, new TargetPort({ name: p, luns: [{ name: 'lu0', volume: lun }], clock })]));
  const lu = lun.identity().uniqueId;
  const gate = (host: string, port: string): ReservationGate => new ReservationGate(targetPorts.get(port)!.volume('lu0'), table, { host, port });
  const device = (host: string, config: MultipathConfig, via = ports): MultipathDevice =>
    new MultipathDevice({ name: `${host}:hdisk0`, clock, config, paths: via.map((p) => ({ name: `${host}-${p}`, volume: gate(host, p) })) });
  return { clock, lun, table, lu, ports: targetPorts, gate, device };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isLunrigError(err) ? err.code : String(err);
  }
}

const A0: Nexus = { host: 'A', port: 'p0' };
const A1: Nexus = { host: 'A', port: 'p1' };
const B0: Nexus = { host: 'B', port: 'p0' };

describe('reservations: SCSI-2 and reserve_policy=single_path', () => {
  it('MP-31: host A opens (single_path) -> RESERVE on one path; host B write conflicts; A on its other path conflicts too', async () => {
    const a = array();
    const devA = a.device('A', aixProfile({ algorithm: 'fail_over', reserve_policy: 'single_path' }));
    await devA.open();
    expect(devA.reservation).toEqual({ policy: 'single_path', open: true, path: 'A-p0' });
    expect(a.table.status(a.lu).scsi2).toEqual(A0);
    await devA.write(0, data());
    expect(await code(a.gate('B', 'p0').write(0, data()))).toBe('RESERVATION_CONFLICT');
    expect(await code(a.gate('B', 'p1').read(0, 512))).toBe('RESERVATION_CONFLICT');
    // The same host through its other path is another I_T nexus.
    expect(await code(a.gate('A', 'p1').write(0, data()))).toBe('RESERVATION_CONFLICT');
    await devA.close();
    expect(a.table.status(a.lu).scsi2).toBeUndefined();
  });

  it('MP-31: algorithm=round_robin with reserve_policy=single_path is rejected at configuration time', () => {
    const err = (() => {
      try {
        aixProfile({ algorithm: 'round_robin', reserve_policy: 'single_path' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isLunrigError(err, 'INVALID_CONFIG')).toBe(true);
    expect(() => aixProfile({ algorithm: 'shortest_queue', reserve_policy: 'single_path' })).toThrow(/single_path/);
    expect(() => aixProfile({ algorithm: 'fail_over', reserve_policy: 'single_path' })).not.toThrow();
    // A hand-made config is checked by the device as well.
    const a = array();
    expect(() => a.device('A', { ...aixProfile({ algorithm: 'round_robin' }), reservation: { policy: 'single_path' } })).toThrow(/single_path/);
  });

  it('MP-32: the reserving path fails -> BDR and RESERVE through the new path; the next I/O succeeds and the reset is logged', async () => {
    const a = array();
    const devA = a.device('A', aixProfile({ algorithm: 'fail_over', reserve_policy: 'single_path' }));
    const events: MultipathEvent[] = [];
    devA.on('event', (e) => events.push(e));
    await devA.open();
    a.ports.get('p0')!.faults.set({ kind: 'down' });
    await devA.write(0, data(4 * KiB, 0x5a));
    expect(devA.path('A-p0').state).toBe('failed');
    expect(a.table.status(a.lu).scsi2).toEqual(A1);
    expect(devA.reservation.path).toBe('A-p1');
    const actions = events.filter((e) => e.type === 'reservation').map((e) => (e.type === 'reservation' ? `${e.action}:${e.path}` : ''));
    expect(actions).toEqual(['reserve:A-p0', 'reset:A-p1', 'reserve:A-p1']);
    expect(await devA.read(0, 4 * KiB)).toEqual(data(4 * KiB, 0x5a));
  });

  it('MP-25: hcheck_cmd=test_unit_rdy on a path to an LU SCSI-2 reserved by another initiator gets RESERVATION CONFLICT; inquiry succeeds', async () => {
    const a = array();
    await a.table.nexus(a.lu, B0).reserve();
    const tur = a.device('A', aixProfile({ hcheck_cmd: 'test_unit_rdy' }));
    const inq = a.device('A', aixProfile({ hcheck_cmd: 'inquiry' }));
    expect(await code(tur.path('A-p0').probe('tur'))).toBe('RESERVATION_CONFLICT');
    await expect(inq.path('A-p0').probe('inquiry')).resolves.toBeUndefined();
    // A conflict answer says nothing about the path: a check round leaves it Enabled.
    await a.clock.advance(60_000);
    expect(tur.path('A-p0').state).toBe('online');
    expect(tur.path('A-p0').stats.probeFailures).toBeGreaterThan(0);
    expect(inq.path('A-p0').stats.probeFailures).toBe(0);
  });

  it('MP-33: no_reserve, two VIOS (two initiators) read and write the same LU concurrently with 0 conflicts', async () => {
    const a = array();
    const vios1 = a.device('VIOS1', aixProfile({ algorithm: 'round_robin', reserve_policy: 'no_reserve' }));
    const vios2 = a.device('VIOS2', aixProfile({ algorithm: 'round_robin', reserve_policy: 'no_reserve' }));
    await Promise.all([vios1.open(), vios2.open()]);
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      ops.push(vios1.write(i * 8 * KiB, data(4 * KiB, 1)), vios2.write(i * 8 * KiB + 4 * KiB, data(4 * KiB, 2)));
      ops.push(vios1.read(i * 4 * KiB, 4 * KiB), vios2.read(i * 4 * KiB, 4 * KiB));
    }
    const results = await Promise.allSettled(ops);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(0);
    expect(a.table.status(a.lu)).toMatchObject({ registrations: [], reservation: undefined, scsi2: undefined });
  });
});

describe('reservations: SPC-3 persistent reservations', () => {
  it('MP-34: PR_exclusive, host A registers K on all its paths and reserves -> A round robin I/O succeeds on every path; unregistered B write conflicts', async () => {
    const a = array();
    const devA = a.device('A', aixProfile({ algorithm: 'round_robin', reserve_policy: 'PR_exclusive', PR_key_value: '0xa1' }));
    await devA.open();
    const st = a.table.status(a.lu);
    expect(st.registrations.map((r) => `${r.host}@${r.port}=${r.key}`).sort()).toEqual(['A@p0=00000000000000a1', 'A@p1=00000000000000a1']);
    expect(st.reservation?.type).toBe('write_exclusive_registrants_only');
    for (let i = 0; i < 10; i++) await devA.write(i * 4 * KiB, data());
    expect(devA.path('A-p0').stats.completed).toBe(5);
    expect(devA.path('A-p1').stats.completed).toBe(5);
    expect(await code(a.gate('B', 'p0').write(0, data()))).toBe('RESERVATION_CONFLICT');
    // Write Exclusive types let others read.
    await expect(a.gate('B', 'p1').read(0, 512)).resolves.toHaveLength(512);
  });

  it('MP-35: PR_shared, hosts A and B each register their own key -> both write; host C without a key conflicts', async () => {
    const a = array();
    const devA = a.device('A', aixProfile({ algorithm: 'round_robin', reserve_policy: 'PR_shared', PR_key_value: 0xa }));
    const devB = a.device('B', aixProfile({ algorithm: 'round_robin', reserve_policy: 'PR_shared', PR_key_value: 0xb }));
    await devA.open();
    await devB.open();
    expect(a.table.status(a.lu).reservation).toEqual({ type: 'write_exclusive_all_registrants', key: '000000000000000a' });
    await devA.write(0, data(4 * KiB, 1));
    await devB.write(4 * KiB, data(4 * KiB, 2));
    expect(await code(a.gate('C', 'p0').write(0, data()))).toBe('RESERVATION_CONFLICT');
    expect(await code(a.gate('C', 'p1').trim(0, 4096))).toBe('RESERVATION_CONFLICT');
  });

  it('MP-36: a SCSI-2 RESERVE sent to an LU holding a PR reservation gets RESERVATION CONFLICT (and so does one with only registrations)', async () => {
    const a = array();
    const nA = a.table.nexus(a.lu, A0);
    await nA.persistentReserveOut({ action: 'register', serviceKey: 1 });
    expect(await code(a.table.nexus(a.lu, B0).reserve())).toBe('RESERVATION_CONFLICT');
    await nA.persistentReserveOut({ action: 'reserve', key: 1, type: 'exclusive_access' });
    expect(await code(a.table.nexus(a.lu, B0).reserve())).toBe('RESERVATION_CONFLICT');
    expect(await code(nA.reserve())).toBe('RESERVATION_CONFLICT');
    // And PR commands from another nexus while a SCSI-2 reserve is held conflict too (no mixing).
    const c = array();
    await c.table.nexus(c.lu, A0).reserve();
    expect(await code(c.table.nexus(c.lu, B0).persistentReserveOut({ action: 'register', serviceKey: 2 }))).toBe('RESERVATION_CONFLICT');
  });

  it('MP-37: PRgeneration +1 on REGISTER, REGISTER AND IGNORE, CLEAR, PREEMPT, PREEMPT AND ABORT; not on RESERVE or RELEASE', async () => {
    const a = array();
    const gen = (): number => a.table.status(a.lu).generation;
    const nA = a.table.nexus(a.lu, A0);
    const nB = a.table.nexus(a.lu, B0);
    const steps: [string, () => Promise<void>, number][] = [
      ['register A', () => nA.persistentReserveOut({ action: 'register', serviceKey: 0xa }), 1],
      ['register B', () => nB.persistentReserveOut({ action: 'register', serviceKey: 0xb }), 1],
      ['reserve', () => nA.persistentReserveOut({ action: 'reserve', key: 0xa, type: 'write_exclusive' }), 0],
      ['reserve again', () => nA.persistentReserveOut({ action: 'reserve', key: 0xa, type: 'write_exclusive' }), 0],
      ['release', () => nA.persistentReserveOut({ action: 'release', key: 0xa, type: 'write_exclusive' }), 0],
      ['re-register A (change key)', () => nA.persistentReserveOut({ action: 'register', key: 0xa, serviceKey: 0xaa }), 1],
      ['register and ignore B', () => nB.persistentReserveOut({ action: 'register_and_ignore', serviceKey: 0xbb }), 1],
      ['reserve EA by B', () => nB.persistentReserveOut({ action: 'reserve', key: 0xbb, type: 'exclusive_access' }), 0],
      ['preempt B by A', () => nA.persistentReserveOut({ action: 'preempt', key: 0xaa, serviceKey: 0xbb, type: 'exclusive_access' }), 1],
      ['register B again', () => nB.persistentReserveOut({ action: 'register', serviceKey: 0xbc }), 1],
      ['preempt and abort B', () => nA.persistentReserveOut({ action: 'preempt_and_abort', key: 0xaa, serviceKey: 0xbc, type: 'exclusive_access' }), 1],
      ['clear', () => nA.persistentReserveOut({ action: 'clear', key: 0xaa }), 1],
    ];
    for (const [what, step, delta] of steps) {
      const before = gen();
      await step();
      expect(gen() - before, what).toBe(delta);
    }
    expect(a.table.status(a.lu)).toMatchObject({ registrations: [], reservation: undefined });
    // A conflicting REGISTER changes nothing, the generation included.
    const before = gen();
    expect(await code(nA.persistentReserveOut({ action: 'register', key: 0x99, serviceKey: 0x98 }))).toBe('RESERVATION_CONFLICT');
    expect(gen()).toBe(before);
  });

  it('MP-38: a path added to a PR_exclusive device conflicts until its key is registered; the multipath layer registers it on add', async () => {
    const a = array(['p0', 'p1', 'p2']);
    const devA = a.device('A', dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', reservation_key: '0x77' }), ['p0', 'p1']);
    await devA.open();
    // Before the device knows the new path, its nexus is not registered: conflict.
    const newPath = a.gate('A', 'p2');
    expect(await code(newPath.write(0, data()))).toBe('RESERVATION_CONFLICT');
    devA.addPath({ name: 'A-p2', volume: newPath });
    for (let i = 0; i < 9; i++) await devA.write(i * 4 * KiB, data());
    expect(devA.path('A-p2').stats.completed).toBeGreaterThan(0);
    expect(devA.path('A-p2').stats.errors.device).toBe(0);
    expect(a.table.status(a.lu).registrations.map((r) => r.port).sort()).toEqual(['p0', 'p1', 'p2']);
  });

  it('the access table of SPC-3: who may read and write under each PR type', async () => {
    const types = ['write_exclusive', 'exclusive_access', 'write_exclusive_registrants_only', 'exclusive_access_registrants_only', 'write_exclusive_all_registrants', 'exclusive_access_all_registrants'] as const;
    const rows: string[] = [];
    for (const type of types) {
      const a = array();
      await a.table.nexus(a.lu, A0).persistentReserveOut({ action: 'register', serviceKey: 1 });
      await a.table.nexus(a.lu, B0).persistentReserveOut({ action: 'register', serviceKey: 2 });
      await a.table.nexus(a.lu, A0).persistentReserveOut({ action: 'reserve', key: 1, type });
      const who = { holder: A0, registrant: B0, other: { host: 'C', port: 'p0' } };
      const cells = Object.entries(who).map(([k, n]) => `${k}:${a.table.check(a.lu, n, 'read') ? '-' : 'r'}${a.table.check(a.lu, n, 'write') ? '-' : 'w'}`);
      rows.push(`${type} ${cells.join(' ')}`);
    }
    expect(rows).toEqual([
      'write_exclusive holder:rw registrant:r- other:r-',
      'exclusive_access holder:rw registrant:-- other:--',
      'write_exclusive_registrants_only holder:rw registrant:rw other:r-',
      'exclusive_access_registrants_only holder:rw registrant:rw other:--',
      'write_exclusive_all_registrants holder:rw registrant:rw other:r-',
      'exclusive_access_all_registrants holder:rw registrant:rw other:--',
    ]);
  });

  it('APTPL: registrations and the reservation survive a restart when the REGISTER set APTPL; without it a restart clears them; SCSI-2 never survives', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lunrig-pr-'));
    try {
      const t1 = await ReservationTable.open(dir);
      await t1.persistentReserveOut('lu-1', A0, { action: 'register', serviceKey: 0x11, aptpl: true });
      await t1.persistentReserveOut('lu-1', A0, { action: 'reserve', key: 0x11, type: 'exclusive_access_registrants_only' });
      await t1.persistentReserveOut('lu-2', B0, { action: 'register', serviceKey: 0x22 });
      t1.reserve('lu-3', A1);
      const t2 = await ReservationTable.open(dir);
      expect(t2.status('lu-1')).toMatchObject({ generation: 1, aptpl: true, reservation: { type: 'exclusive_access_registrants_only', key: '0000000000000011', holder: A0 } });
      expect(t2.check('lu-1', B0, 'read')?.code).toBe('RESERVATION_CONFLICT');
      expect(t2.status('lu-2').registrations).toEqual([]);
      expect(t2.status('lu-3').scsi2).toBeUndefined();
      // Turning APTPL off removes the persisted copy.
      await t2.persistentReserveOut('lu-1', A0, { action: 'register', key: 0x11, serviceKey: 0x12, aptpl: false });
      const t3 = await ReservationTable.open(dir);
      expect(t3.status('lu-1').registrations).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
