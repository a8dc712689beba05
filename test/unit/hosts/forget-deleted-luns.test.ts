/**
 * Deleting a LUN drops its host mappings and its reservations (persistent
 * ones from reservations.json too); a mapping of a LUN re-created under the
 * same name, made after the re-creation, is not touched by the old LUN's
 * deletion event.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostRegistry, ReservationTable, forgetDeletedLuns } from '../../../src/hosts/index.js';
import { Pool } from '../../../src/store/pool.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const temp = tempDirs('lunrig-forget-luns-');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  temp.cleanup();
});

describe('a deleted LUN leaves no mapping or reservation behind', () => {
  it('mappings and APTPL registrations of a deleted LUN are gone, also after reopening; other LUNs keep theirs', async () => {
    const dir = path.join(temp.make(), 'pool');
    const pool = await Pool.open({ dir, engine: 'fs' });
    closers.push(() => pool.close());
    const lun0 = await pool.createLun({ name: 'lun0', size: '4M' });
    const lun1 = await pool.createLun({ name: 'lun1', size: '4M' });
    const access = { hosts: await HostRegistry.open(dir), reservations: await ReservationTable.open(dir) };
    const follower = forgetDeletedLuns(pool, access);
    closers.push(async () => follower.stop());
    await access.hosts.create({ name: 'A', initiators: [{ kind: 'nbd-name', name: 'A' }] });
    await access.hosts.map('A', 'lun0', lun0.uniqueId);
    await access.hosts.map('A', 'lun1', lun1.uniqueId);
    for (const lu of [lun0.uniqueId, lun1.uniqueId]) {
      await access.reservations.nexus(lu, { host: 'A', port: 'p0' }).persistentReserveOut({ action: 'register', serviceKey: 0xa, aptpl: true });
    }
    await pool.deleteLun('lun0');
    await follower.drained();
    expect(access.hosts.get('A').luns).toEqual(['lun1']);
    expect(access.reservations.status(lun0.uniqueId).registrations).toEqual([]);
    expect(access.reservations.status(lun1.uniqueId).registrations).toHaveLength(1);
    const again = { hosts: await HostRegistry.open(dir), reservations: await ReservationTable.open(dir) };
    expect(again.hosts.get('A').luns).toEqual(['lun1']);
    expect(again.reservations.status(lun0.uniqueId).registrations).toEqual([]);
    expect(again.reservations.status(lun1.uniqueId).registrations).toHaveLength(1);
  });

  it('a mapping made for a re-created LUN of the same name stays when the old LU is forgotten late', async () => {
    const dir = temp.make();
    const hosts = await HostRegistry.open(dir);
    await hosts.create({ name: 'A', initiators: [{ kind: 'nbd-name', name: 'A' }] });
    await hosts.map('A', 'lun0', 'new-lu');
    await hosts.forgetLun('lun0', 'old-lu');
    expect(hosts.get('A').luns).toEqual(['lun0']);
    await hosts.forgetLun('lun0', 'new-lu');
    expect(hosts.get('A').luns).toEqual([]);
  });
});
