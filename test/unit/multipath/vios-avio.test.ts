/**
 * Virtual I/O (spec/multipath.md §2, §3): the VIOS/vSCSI mapping rules
 * (MP-43, MP-44, MP-45) and AVIO guest storage (MP-46), plus a dual-VIOS
 * client built from the mapping: one device, two paths (MP-41/MP-42).
 */
import { describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import {
  AvioGuest,
  ClientPartition,
  MultipathDevice,
  TargetPort,
  ViosPartition,
  ViosSite,
  discoverDevices,
  logicalUnitAddress,
} from '../../../src/multipath/index.js';
import { aixProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import type { Volume, WriteOptions } from '../../../src/volume/volume.js';

const MiB = 1024 * 1024;
const TB = 1024 ** 4;

const code = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isLunrigError(e) ? e.code : String(e);
  }
};

function site() {
  const s = new ViosSite('U9111.520.109BF2E');
  const vios1 = new ViosPartition({ name: 'vios1', id: 1, maxVirtualSlots: 20 }, s);
  const vios2 = new ViosPartition({ name: 'vios2', id: 2, maxVirtualSlots: 20 }, s);
  const client = new ClientPartition({ name: 'lpar8', id: 8, maxVirtualSlots: 10 });
  return { s, vios1, vios2, client };
}

describe('VIOS / vSCSI mapping', () => {
  it('MP-43: mkvdev of a device holding a VG fails; an LV >= 1 TB is rejected; an LV backing in a dual-VIOS mapping is rejected', () => {
    const { vios1, vios2, client } = site();
    const v1 = vios1.createVhost(3, client, 3);
    const v2 = vios2.createVhost(4, client, 4);
    const lu = new MemoryVolume({ size: 64 * MiB, identity: { name: 'lu0' } });
    const big = new MemoryVolume({ size: 2 * MiB, identity: { name: 'lu1' } });
    expect(code(() => vios1.mkvdev({ vdev: { name: 'hdisk2', kind: 'pv', volume: lu, volumeGroup: 'datavg' }, vadapter: v1.name }))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios1.mkvdev({ vdev: { name: 'bigLV', kind: 'lv', volume: big, size: TB }, vadapter: v1.name }))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios1.mkvdev({ vdev: { name: 'smallLV', kind: 'lv', volume: big, size: TB - 512 }, vadapter: v1.name }))).toBe('ok');
    // The same LU's LV through the second VIOS: dual VIOS with LV backing is not supported.
    expect(code(() => vios2.mkvdev({ vdev: { name: 'lv2', kind: 'lv', volume: big, size: MiB }, vadapter: v2.name }))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios2.mkvdev({ vdev: { name: 'hdisk5', kind: 'pv', volume: big }, vadapter: v2.name }))).toBe('INVALID_ARGUMENT');
    // Physical volumes on both VIOS are the supported dual-VIOS export.
    expect(code(() => vios1.mkvdev({ vdev: { name: 'hdisk3', kind: 'pv', volume: lu }, vadapter: v1.name }))).toBe('ok');
    expect(code(() => vios2.mkvdev({ vdev: { name: 'hdisk3', kind: 'pv', volume: lu }, vadapter: v2.name }))).toBe('ok');
  });

  it('MP-44: virtual slot 0 or 1, a slot >= the partition maximum, a duplicate slot, or more than 256 slots are rejected', () => {
    const { vios1, client } = site();
    expect(code(() => vios1.createVhost(0, client, 5))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios1.createVhost(1, client, 5))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios1.createVhost(20, client, 5))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios1.createVhost(19, client, 5))).toBe('ok');
    expect(code(() => vios1.createVhost(19, client, 6))).toBe('INVALID_ARGUMENT');
    expect(code(() => vios1.createVhost(18, client, 5))).toBe('INVALID_ARGUMENT'); // the client's slot 5 is taken
    expect(code(() => new ClientPartition({ name: 'huge', id: 9, maxVirtualSlots: 257 }))).toBe('INVALID_CONFIG');
    const max = new ClientPartition({ name: 'max', id: 10, maxVirtualSlots: 256 });
    for (let s = 2; s < 256; s++) max.useSlot(s, `a${s}`);
    expect(max.usedSlots).toBe(254);
    expect(code(() => max.useSlot(256, 'one-too-many'))).toBe('INVALID_ARGUMENT');
  });

  it('MP-45: the n-th VTD on a vhost is LUN n; the client location code ends in L + hex(0x80|n) + 0000000000', () => {
    const { vios1, client } = site();
    const v = vios1.createVhost(4, client, 3);
    const vtds = [0, 1, 2].map((i) => vios1.mkvdev({ vdev: { name: `hdisk${i + 2}`, kind: 'pv', volume: new MemoryVolume({ size: MiB, identity: { name: `lu${i}` } }) }, vadapter: v.name }));
    expect(vtds.map((d) => [d.name, d.lun])).toEqual([
      ['vtscsi0', 1],
      ['vtscsi1', 2],
      ['vtscsi2', 3],
    ]);
    expect(vios1.vtdLocation(vtds[1]!)).toBe('U9111.520.109BF2E-V1-C4-L2');
    expect(vios1.clientLocation(vtds[0]!)).toBe('U9111.520.109BF2E-V8-C3-T1-L810000000000');
    expect(vios1.clientLocation(vtds[1]!)).toBe('U9111.520.109BF2E-V8-C3-T1-L820000000000');
    expect(logicalUnitAddress(1)).toBe('810000000000');
  });

  it('MP-41/MP-42 from the mapping: one PV exported by both VIOS -> one client device with 2 paths (vscsi0, vscsi1), both Enabled', async () => {
    const { vios1, vios2, client } = site();
    const lu = new MemoryVolume({ size: 4 * MiB, identity: { name: 'lu0' } });
    const clock = new VirtualClock();
    const d1 = vios1.mkvdev({ vdev: { name: 'hdisk2', kind: 'pv', volume: lu }, vadapter: vios1.createVhost(3, client, 3).name });
    const d2 = vios2.mkvdev({ vdev: { name: 'hdisk2', kind: 'pv', volume: lu }, vadapter: vios2.createVhost(3, client, 4).name });
    const ports = [new TargetPort({ name: 'vscsi0', luns: [{ name: d1.name, volume: d1.volume }], clock }), new TargetPort({ name: 'vscsi1', luns: [{ name: d2.name, volume: d2.volume }], clock })];
    const found = discoverDevices([
      { name: 'vscsi0', volume: ports[0]!.volume(d1.name) },
      { name: 'vscsi1', volume: ports[1]!.volume(d2.name) },
    ]);
    expect(found).toHaveLength(1);
    const dev = new MultipathDevice({ paths: found[0]!.paths, config: aixProfile({ adapter: 'vscsi' }), clock });
    expect(dev.describe().map((p) => [p.name, p.stateName])).toEqual([
      ['vscsi0', 'Enabled'],
      ['vscsi1', 'Enabled'],
    ]);
    await dev.close();
  });
});

/** Records what reaches the backing store. */
class Recorder extends MemoryVolume {
  writes: { length: number; fua: boolean }[] = [];
  reads: number[] = [];
  override async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.writes.push({ length: data.length, fua: options?.fua === true });
    return super.write(offset, data, options);
  }
  override async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.reads.push(length);
    return super.read(offset, length, into);
  }
}

describe('AVIO guest storage', () => {
  it('MP-46: LUN #129 on a guest is rejected (128 AVIO LUNs; 30 emulated)', () => {
    const guest = new AvioGuest('guest1');
    const vol = (): Volume => new MemoryVolume({ size: MiB });
    for (let i = 0; i < 128; i++) guest.attach(vol());
    expect(guest.luns).toHaveLength(128);
    expect(code(() => guest.attach(vol()))).toBe('INVALID_CONFIG');
    const emulated = new AvioGuest('guest2');
    for (let i = 0; i < 30; i++) emulated.attach(vol(), { mode: 'emulated' });
    expect(code(() => emulated.attach(vol(), { mode: 'emulated' }))).toBe('INVALID_CONFIG');
  });

  it('MP-46: I/O larger than 1 MB is split into 1 MB pieces, or rejected under the reject policy', async () => {
    const store = new Recorder({ size: 8 * MiB, identity: { name: 'd0' } });
    const guest = new AvioGuest('g');
    const split = guest.attach(store);
    split.open();
    const data = new Uint8Array(2.5 * MiB).map((_, i) => i & 0xff);
    await split.write(0, data);
    expect(store.writes.map((w) => w.length)).toEqual([MiB, MiB, MiB / 2]);
    expect(Buffer.from(await split.read(0, data.length)).equals(Buffer.from(data))).toBe(true);
    expect(store.reads).toEqual([MiB, MiB, MiB / 2]);
    const strict = guest.attach(new MemoryVolume({ size: 8 * MiB }), { largeIo: 'reject' });
    strict.open();
    await expect(strict.write(0, data)).rejects.toSatisfy((e) => isLunrigError(e, 'INVALID_ARGUMENT'));
    await expect(strict.write(0, data.subarray(0, MiB))).resolves.toBeUndefined();
  });

  it('MP-46: a file-backed write is not acknowledged before it is durable (sent with FUA); a disk-backed one keeps the caller flags', async () => {
    const file = new Recorder({ size: MiB, identity: { name: 'f0' } });
    const disk = new Recorder({ size: MiB, identity: { name: 'd0' } });
    const guest = new AvioGuest('g');
    const f = guest.attach(file, { backing: 'file' });
    const d = guest.attach(disk);
    f.open();
    d.open();
    await f.write(0, new Uint8Array(4096));
    await d.write(0, new Uint8Array(4096));
    expect(file.writes).toEqual([{ length: 4096, fua: true }]);
    expect(disk.writes).toEqual([{ length: 4096, fua: false }]);
  });

  it('MP-46: a backing store swapped while attached -> guest opens fail until replace_dsk', async () => {
    const guest = new AvioGuest('g');
    const disk = guest.attach(new MemoryVolume({ size: MiB, identity: { name: 'old' } }));
    disk.open();
    await disk.write(0, new Uint8Array(512).fill(1));
    disk.replaceBackingStore(new MemoryVolume({ size: MiB, identity: { name: 'new' } }));
    expect(code(() => disk.open())).toBe('NOT_READY');
    await expect(disk.read(0, 512)).rejects.toSatisfy((e) => isLunrigError(e, 'NOT_READY'));
    disk.replaceDsk();
    disk.open();
    await expect(disk.read(0, 512)).resolves.toHaveLength(512);
  });
});
