/**
 * The AIX VIOS / vSCSI mapping model (spec/multipath.md §2.1, §2.2;
 * MP-43..MP-45): partitions with virtual slots, vhost server adapters, and
 * `mkvdev`, which maps a backing device (a physical volume, i.e. a whole
 * lunrig LUN, or a logical volume carved from one) to a virtual target
 * device (VTD) on a vhost. The client sees each VTD as a LUN behind its
 * vscsi adapter at a location code; a dual-VIOS client gets one path per
 * VIOS (build them with `vtd.volume` through each VIOS's TargetPort and give
 * them to a MultipathDevice grouped by identity, MP-41/MP-42).
 *
 * Rules enforced (`[S0]` unless noted):
 * - slots 0 and 1 are reserved; a slot must be below the partition's
 *   maximum number of virtual adapters, which is at most 256; a slot number
 *   is used once per partition (MP-44);
 * - a backing device holding a volume group cannot be exported (MP-43);
 * - an LV backing must be < 1 TB, and LV backings are not supported with
 *   dual VIOS (the same backing LU exported by two VIOS) (MP-43);
 * - the n-th VTD on a vhost is LUN n (counting from 1) and the client
 *   location code ends in L + hex(0x80 | n) + 0000000000 (MP-45, `[K]`).
 */
import { LunrigError } from '../errors.js';
import type { Volume } from '../volume/volume.js';

export const MAX_VIRTUAL_SLOTS = 256;
export const FIRST_USER_SLOT = 2;
export const LV_BACKING_LIMIT = 1024 ** 4; // 1 TB (binary)

export interface BackingDevice {
  /** hdiskN / dlmfdrvN / an LV name. */
  name: string;
  kind: 'pv' | 'lv';
  /** The LU behind it (a pool LUN's Volume); an LV is a part of it. */
  volume: Volume;
  /** Bytes (an LV's size; a PV's defaults to its volume's). */
  size?: number;
  /** The device holds a volume group (existing data): mkvdev refuses it. */
  volumeGroup?: string;
}

export interface VirtualTargetDevice {
  /** vtscsiN. */
  name: string;
  vhost: string;
  /** The LUN number the client sees (1 for the first VTD on the vhost). */
  lun: number;
  backing: BackingDevice;
  /** What the client's path reaches (the backing LU). */
  volume: Volume;
}

export interface PartitionOptions {
  name: string;
  /** Partition id (the V in location codes). */
  id: number;
  /** Maximum virtual adapters (slots 0..max-1); at most 256. */
  maxVirtualSlots?: number;
}

/** The physical location prefix, e.g. U9111.520.109BF2E. */
export type SystemLocation = string;

/** Slot bookkeeping shared by VIOS and client partitions. */
export class Partition {
  readonly name: string;
  readonly id: number;
  readonly maxVirtualSlots: number;
  private readonly slots = new Map<number, string>();

  constructor(o: PartitionOptions) {
    this.name = o.name;
    this.id = o.id;
    this.maxVirtualSlots = o.maxVirtualSlots ?? 10;
    if (!Number.isSafeInteger(this.maxVirtualSlots) || this.maxVirtualSlots < FIRST_USER_SLOT + 1 || this.maxVirtualSlots > MAX_VIRTUAL_SLOTS) {
      throw new LunrigError('INVALID_CONFIG', `${this.name}: maximum virtual adapters must be ${FIRST_USER_SLOT + 1}-${MAX_VIRTUAL_SLOTS}, got ${o.maxVirtualSlots}`, { partition: this.name });
    }
  }

  /** Take a virtual slot for adapter `adapter`. */
  useSlot(slot: number, adapter: string): void {
    if (!Number.isSafeInteger(slot) || slot < FIRST_USER_SLOT) {
      throw new LunrigError('INVALID_ARGUMENT', `${this.name}: virtual slots 0 and 1 are reserved for system adapters (got ${slot})`, { partition: this.name, slot });
    }
    if (slot >= this.maxVirtualSlots) {
      throw new LunrigError('INVALID_ARGUMENT', `${this.name}: slot ${slot} is not below the partition's maximum of ${this.maxVirtualSlots} virtual adapters`, { partition: this.name, slot });
    }
    const owner = this.slots.get(slot);
    if (owner !== undefined) throw new LunrigError('INVALID_ARGUMENT', `${this.name}: slot ${slot} is already used by ${owner}`, { partition: this.name, slot });
    this.slots.set(slot, adapter);
  }

  get usedSlots(): number {
    return this.slots.size;
  }
}

export class VhostAdapter {
  readonly vtds: VirtualTargetDevice[] = [];

  constructor(
    readonly name: string,
    readonly slot: number,
    /** The client partition and its slot this adapter serves. */
    readonly client: { partition: ClientPartition; slot: number },
  ) {}
}

export class ViosPartition extends Partition {
  private readonly vhosts = new Map<string, VhostAdapter>();
  private nextVtd = 0;

  constructor(
    o: PartitionOptions,
    private readonly site: ViosSite,
  ) {
    super(o);
    site.register(this);
  }

  /** Create a virtual SCSI server adapter vhostN in `slot`, serving `client` at `clientSlot`. */
  createVhost(slot: number, client: ClientPartition, clientSlot: number): VhostAdapter {
    const name = `vhost${this.vhosts.size}`;
    this.useSlot(slot, name);
    client.useSlot(clientSlot, `vscsi(${this.name})`);
    const v = new VhostAdapter(name, slot, { partition: client, slot: clientSlot });
    this.vhosts.set(name, v);
    return v;
  }

  vhost(name: string): VhostAdapter {
    const v = this.vhosts.get(name);
    if (!v) throw new LunrigError('INVALID_ARGUMENT', `${this.name}: no adapter ${name}`);
    return v;
  }

  /** mkvdev -vdev <backing> -vadapter <vhost> [-dev name]. */
  mkvdev(o: { vdev: BackingDevice; vadapter: string; dev?: string }): VirtualTargetDevice {
    const vhost = this.vhost(o.vadapter);
    const b = o.vdev;
    if (b.volumeGroup !== undefined) {
      throw new LunrigError('INVALID_ARGUMENT', `mkvdev: ${b.name} holds volume group ${b.volumeGroup}: devices with existing data (volume groups) cannot be used as virtual devices`, { vdev: b.name });
    }
    const size = b.size ?? b.volume.size;
    if (b.kind === 'lv') {
      if (size >= LV_BACKING_LIMIT) throw new LunrigError('INVALID_ARGUMENT', `mkvdev: logical volume ${b.name} is ${size} bytes; LV-backed virtual disks must be smaller than 1 TB`, { vdev: b.name, size });
      const other = this.site.exportersOf(b.volume).find((v) => v !== this);
      if (other) throw new LunrigError('INVALID_ARGUMENT', `mkvdev: ${b.name} is a logical volume on an LU ${other.name} also exports; LV backings are not supported with dual VIOS (export physical volumes)`, { vdev: b.name, vios: other.name });
    } else {
      const lvElsewhere = this.site.exports().find((e) => e.vios !== this && e.vtd.backing.volume === b.volume && e.vtd.backing.kind === 'lv');
      if (lvElsewhere) throw new LunrigError('INVALID_ARGUMENT', `mkvdev: ${lvElsewhere.vios.name} exports an LV of this LU; LV backings are not supported with dual VIOS`, { vdev: b.name });
    }
    const vtd: VirtualTargetDevice = { name: o.dev ?? `vtscsi${this.nextVtd++}`, vhost: vhost.name, lun: vhost.vtds.length + 1, backing: b, volume: b.volume };
    vhost.vtds.push(vtd);
    return vtd;
  }

  /** Every VTD on this VIOS. */
  vtds(): VirtualTargetDevice[] {
    return [...this.vhosts.values()].flatMap((v) => v.vtds);
  }

  /** lsmap-style: the VTD location code U...-V<id>-C<slot>-L<lun>. */
  vtdLocation(vtd: VirtualTargetDevice): string {
    const vhost = this.vhost(vtd.vhost);
    return `${this.site.location}-V${this.id}-C${vhost.slot}-L${vtd.lun}`;
  }

  /** The client hdisk's location code for `vtd`: U...-V<client id>-C<client slot>-T1-L<0x80|n>0000000000. */
  clientLocation(vtd: VirtualTargetDevice): string {
    const vhost = this.vhost(vtd.vhost);
    return `${this.site.location}-V${vhost.client.partition.id}-C${vhost.client.slot}-T1-L${logicalUnitAddress(vtd.lun)}`;
  }
}

export class ClientPartition extends Partition {}

/** The managed system: its location prefix and every VIOS, for the dual-VIOS rules. */
export class ViosSite {
  private readonly vioses: ViosPartition[] = [];

  constructor(readonly location: SystemLocation = 'U9111.520.109BF2E') {}

  register(v: ViosPartition): void {
    this.vioses.push(v);
  }

  exports(): { vios: ViosPartition; vtd: VirtualTargetDevice }[] {
    return this.vioses.flatMap((vios) => vios.vtds().map((vtd) => ({ vios, vtd })));
  }

  exportersOf(volume: Volume): ViosPartition[] {
    return [...new Set(this.exports().filter((e) => e.vtd.backing.volume === volume).map((e) => e.vios))];
  }
}

/** SCSI logical unit addressing as the client shows it: hex(0x80 | n) + 0000000000 (LUN 1 -> 810000000000). */
export function logicalUnitAddress(lun: number): string {
  if (!Number.isSafeInteger(lun) || lun < 0 || lun > 0x3f) throw new LunrigError('INVALID_ARGUMENT', `LUN ${lun} is outside 0-63 for this addressing method`);
  return `${(0x80 | lun).toString(16).toUpperCase()}0000000000`;
}
