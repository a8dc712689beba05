/**
 * Reservations over real NBD target ports (spec/multipath.md §1.7, MP-31,
 * MP-32, MP-34): TargetPorts with hosts and one shared ReservationTable;
 * each host's MultipathDevice runs over NbdPathVolumes whose nexus commands
 * go out of band (the table handle, as the control API would carry them).
 * The conflict reaches the other host as EPERM on every port and stays a
 * device error (the paths stay up, MP-13).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../src/errors.js';
import { HostRegistry, ReservationTable } from '../../src/hosts/index.js';
import { MultipathDevice, NbdPathVolume, TargetPort, type MultipathConfig } from '../../src/multipath/index.js';
import { aixProfile } from '../../src/multipath/profiles.js';
import { VirtualClock } from '../../src/util/clock.js';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { tempDirs } from '../helpers/temp-dir.js';

const dirs = tempDirs('lunrig-mp-rsv-');
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  dirs.cleanup();
});

async function setup() {
  const dir = dirs.make();
  const clock = new VirtualClock();
  const lun = new MemoryVolume({ size: 4 * 1024 * 1024, identity: { name: 'lu0' } });
  const hosts = new HostRegistry();
  await hosts.create({ name: 'A', luns: ['lu0'] });
  await hosts.create({ name: 'B', luns: ['lu0'] });
  const table = new ReservationTable();
  const ports = ['p0', 'p1'].map((name) => new TargetPort({ name, luns: [{ name: 'lu0', volume: lun }], listen: { path: join(dir, `${name}.sock`) }, access: { hosts, reservations: table }, clock }));
  for (const p of ports) {
    await p.start();
    cleanup.push(() => p.stop());
  }
  const lu = lun.identity().uniqueId;
  const device = async (host: string, config: MultipathConfig): Promise<MultipathDevice> => {
    const paths = await Promise.all(
      ports.map(async (p) => {
        const v = await NbdPathVolume.open(p.target, { exportName: `${host}/lu0` }, { reservations: table.nexus(lu, { host, port: p.name }) });
        cleanup.push(() => v.close());
        return { name: `${host}-${p.name}`, volume: v };
      }),
    );
    const d = new MultipathDevice({ name: `${host}:hdisk1`, paths, config, clock });
    cleanup.push(() => d.close());
    return d;
  };
  return { table, lu, ports, device };
}

const block = (fill: number): Uint8Array => new Uint8Array(4096).fill(fill);

describe('reservations over NBD target ports', () => {
  it('MP-34: PR_exclusive host A writes round robin on both ports; host B gets EPERM (a device error) on both, its paths stay Enabled', async () => {
    const s = await setup();
    const a = await s.device('A', aixProfile({ algorithm: 'round_robin', reserve_policy: 'PR_exclusive', PR_key_value: '0xa' }));
    const b = await s.device('B', aixProfile({ algorithm: 'round_robin' }));
    await a.open();
    for (let i = 0; i < 8; i++) await a.write(i * 4096, block(i + 1));
    expect(a.describe().map((p) => p.stats.completed)).toEqual([4, 4]);
    for (let i = 0; i < 2; i++) {
      const err = await b.write(0, block(0xee)).catch((e: unknown) => e);
      expect(isLunrigError(err, 'READ_ONLY')).toBe(true); // EPERM at the NBD client
      expect((err as Error).message).toMatch(/reservation conflict for B@p[01]/);
    }
    expect(b.describe().map((p) => [p.state, p.stats.errors.device])).toEqual([
      ['online', 1],
      ['online', 1],
    ]);
    expect(Buffer.from(await b.read(0, 4096)).every((x) => x === 1)).toBe(true); // WE-RO: others may read
    await a.close();
    expect(s.table.status(s.lu).reservation).toBeUndefined();
    await b.write(0, block(0xbb));
  });

  it('MP-31/MP-32 over NBD: single_path reserves through p0; p0 goes down -> BDR and RESERVE through p1; host B still conflicts', async () => {
    const s = await setup();
    const a = await s.device('A', aixProfile({ algorithm: 'fail_over', reserve_policy: 'single_path', hcheck_interval: 0 }));
    const b = await s.device('B', aixProfile({ algorithm: 'fail_over', hcheck_interval: 0 }));
    await a.open();
    expect(s.table.status(s.lu).scsi2).toEqual({ host: 'A', port: 'p0' });
    await a.write(0, block(7));
    s.ports[0]!.faults.set({ kind: 'down' });
    await s.ports[0]!.settled();
    await a.write(4096, block(8));
    expect(s.table.status(s.lu).scsi2).toEqual({ host: 'A', port: 'p1' });
    expect(a.reservation.path).toBe('A-p1');
    const err = await b.read(0, 4096).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/reservation conflict for B@p1: reserved \(SCSI-2\) by A@p1/);
  });
});
