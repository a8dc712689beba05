/**
 * HP Integrity VM guest storage adapters (spec/multipath.md §3, MP-46):
 * a guest attaches LUNs through an `avio_stor` (accelerated) or an emulated
 * SCSI adapter. What an emulator can reproduce of AVIO, and does here:
 *
 * - limits: 128 AVIO LUNs per guest, 30 with the emulated HBA, 30 file
 *   backing stores in all `[AVIO-p5]`; LUN 129 is refused;
 * - the AVIO HBA's 1 MB maximum I/O: larger requests are split into 1 MB
 *   pieces (policy 'split', default) or refused (policy 'reject');
 * - file backing stores are write-through: every write to one is sent with
 *   FUA, so it is durable before the guest gets success `[AVIO-p5, p17]`;
 * - a backing store replaced while the guest runs (hpvmmodify): the guest
 *   driver fails every open of that LUN (NOT_READY) until `replaceDsk()`
 *   (gvsdmgr replace_dsk / scsimgr replace_wwid) `[AVIO-p14, p17]`.
 *
 * Not modelled: CPU cost and the emulated model's double stack traversal
 * (lunrig has no guest kernel; bench/ measures real costs instead), and the
 * retry/error policies of pages the spec could not read. Multipathing is the
 * host's (AVIO relies on host native multipathing): give a MultipathDevice
 * as the backing Volume.
 */
import { LunrigError } from '../errors.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';

export const AVIO_MAX_LUNS = 128;
export const EMULATED_MAX_LUNS = 30;
export const MAX_FILE_BACKING_STORES = 30;
export const AVIO_MAX_IO = 1024 * 1024;

export type AdapterMode = 'accelerated' | 'emulated';

export interface AvioAttachOptions {
  /** A raw disk or LV (default) or a file backing store (write-through). */
  backing?: 'disk' | 'file';
  mode?: AdapterMode;
  /** I/O over 1 MB: split (default) or reject. */
  largeIo?: 'split' | 'reject';
}

export class AvioGuest {
  private readonly disks: AvioDisk[] = [];

  constructor(readonly name: string) {}

  /** hpvmmodify -a disk:avio_stor::...: the next LUN on the guest. */
  attach(volume: Volume, o: AvioAttachOptions = {}): AvioDisk {
    const mode = o.mode ?? 'accelerated';
    const limit = mode === 'accelerated' ? AVIO_MAX_LUNS : EMULATED_MAX_LUNS;
    const sameMode = this.disks.filter((d) => d.mode === mode).length;
    if (sameMode >= limit) {
      throw new LunrigError('INVALID_CONFIG', `${this.name}: LUN #${sameMode + 1} refused: a guest takes at most ${limit} ${mode === 'accelerated' ? 'AVIO' : 'emulated SCSI'} LUNs`, { guest: this.name, mode });
    }
    if ((o.backing ?? 'disk') === 'file' && this.disks.filter((d) => d.backing === 'file').length >= MAX_FILE_BACKING_STORES) {
      throw new LunrigError('INVALID_CONFIG', `${this.name}: at most ${MAX_FILE_BACKING_STORES} file backing stores per guest`, { guest: this.name });
    }
    const disk = new AvioDisk(volume, { backing: o.backing ?? 'disk', mode, largeIo: o.largeIo ?? 'split', lun: this.disks.length + 1 });
    this.disks.push(disk);
    return disk;
  }

  get luns(): readonly AvioDisk[] {
    return this.disks;
  }
}

/** One guest LUN: a Volume layer over the backing store, per AVIO's rules. */
export class AvioDisk implements Volume {
  readonly backing: 'disk' | 'file';
  readonly mode: AdapterMode;
  readonly lun: number;
  private readonly largeIo: 'split' | 'reject';
  private store: Volume;
  /** Identity the guest driver knows; a different store behind it fails opens until replaceDsk(). */
  private known: string;
  private opened = false;

  constructor(store: Volume, o: { backing: 'disk' | 'file'; mode: AdapterMode; largeIo: 'split' | 'reject'; lun: number }) {
    this.store = store;
    this.known = store.identity().uniqueId;
    this.backing = o.backing;
    this.mode = o.mode;
    this.largeIo = o.largeIo;
    this.lun = o.lun;
  }

  /** The guest opens the LUN (e.g. a mount): refused while the backing store is not the one the driver knows. */
  open(): void {
    this.checkStore();
    this.opened = true;
  }

  close(): void {
    this.opened = false;
  }

  /** hpvmmodify replacing the backing store while the guest runs. */
  replaceBackingStore(store: Volume): void {
    this.store = store;
    this.opened = false;
  }

  /** gvsdmgr replace_dsk / scsimgr replace_wwid: accept the new backing store. */
  replaceDsk(): void {
    this.known = this.store.identity().uniqueId;
  }

  get size(): number {
    return this.store.size;
  }

  get readOnly(): boolean {
    return this.store.readOnly;
  }

  identity(): VolumeIdentity {
    return this.store.identity();
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkIo(length);
    if (length <= AVIO_MAX_IO) return this.store.read(offset, length, into);
    const out = into ?? new Uint8Array(length);
    for (let done = 0; done < length; done += AVIO_MAX_IO) {
      const n = Math.min(AVIO_MAX_IO, length - done);
      await this.store.read(offset + done, n, out.subarray(done, done + n));
    }
    return out;
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.checkIo(data.length);
    const fua = this.backing === 'file' || options?.fua === true;
    if (data.length <= AVIO_MAX_IO) return this.store.write(offset, data, { ...options, fua });
    for (let done = 0; done < data.length; done += AVIO_MAX_IO) {
      const n = Math.min(AVIO_MAX_IO, data.length - done);
      await this.store.write(offset + done, data.subarray(done, done + n), { ...options, fua });
    }
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.checkIo(0);
    return this.store.writeZeroes(offset, length, { ...options, fua: this.backing === 'file' || options?.fua === true });
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    this.checkIo(0);
    return this.store.trim(offset, length, { ...options, fua: this.backing === 'file' || options?.fua === true });
  }

  async flush(): Promise<void> {
    this.checkIo(0);
    return this.store.flush();
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkIo(0);
    return this.store.blockStatus(offset, length);
  }

  private checkIo(length: number): void {
    if (!this.opened) throw new LunrigError('NOT_READY', `guest LUN ${this.lun} is not open`, { lun: this.lun });
    this.checkStore();
    if (length > AVIO_MAX_IO && this.largeIo === 'reject') {
      throw new LunrigError('INVALID_ARGUMENT', `guest LUN ${this.lun}: ${length} bytes exceeds the AVIO HBA's 1 MB maximum I/O`, { lun: this.lun, length });
    }
  }

  private checkStore(): void {
    if (this.store.identity().uniqueId !== this.known) {
      this.opened = false;
      throw new LunrigError('NOT_READY', `guest LUN ${this.lun}: the backing store was replaced; opens fail until replace_dsk`, { lun: this.lun });
    }
  }
}
