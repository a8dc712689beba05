/**
 * A target port's exports: LUNs added to the port one by one, then (when
 * the port serves "all LUNs") every export of a source provider such as the
 * pool's, each seen through the port's FaultSwitch (faulty-volume.ts). One
 * FaultyVolume per source volume, so a session's export stays the same
 * object while the LUN does.
 */
import type { ExportEntry, ExportProvider, ExportRequester } from '../nbd/export-provider.js';
import { ExportRegistry } from '../nbd/export-provider.js';
import type { Volume } from '../volume/volume.js';
import type { FaultSwitch } from './fault-switch.js';
import { FaultyVolume } from './faulty-volume.js';

export class FaultyExports implements ExportProvider {
  /** LUNs added to this port explicitly (already behind the switch). */
  readonly own = new ExportRegistry();
  private readonly wrapped = new WeakMap<Volume, ExportEntry>();

  constructor(
    private readonly faults: FaultSwitch,
    private readonly source?: ExportProvider,
  ) {}

  get(name: string, requester?: ExportRequester): ExportEntry | undefined {
    const own = this.own.get(name);
    if (own) return own;
    const e = this.source?.get(name, requester);
    return e && this.wrap(e);
  }

  list(requester?: ExportRequester): ExportEntry[] {
    const own = this.own.list();
    const names = new Set(own.map((e) => e.name));
    return [...own, ...(this.source?.list(requester) ?? []).filter((e) => !names.has(e.name)).map((e) => this.wrap(e))];
  }

  private wrap(e: ExportEntry): ExportEntry {
    let w = this.wrapped.get(e.volume);
    if (!w || w.name !== e.name) {
      w = { ...e, volume: new FaultyVolume(e.volume, this.faults) };
      this.wrapped.set(e.volume, w);
    }
    return w;
  }
}
