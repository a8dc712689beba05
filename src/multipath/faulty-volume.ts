/**
 * The fault-injection layer of one LUN behind one port: every request asks
 * the port's FaultSwitch first (down, hang, standby, latency, error), then
 * goes to the Volume below. The same layer serves an in-process path and a
 * TargetPort's NBD export, so a fault behaves alike both ways. Like nbdkit's
 * delay and error filters, one operation each, in the usual order.
 */
import { LunrigError } from '../errors.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';
import type { FaultSwitch, RequestClass } from './fault-switch.js';
import type { PathTransport } from './transport.js';

export class FaultyVolume implements Volume, PathTransport {
  constructor(
    readonly below: Volume,
    readonly faults: FaultSwitch,
  ) {}

  get size(): number {
    return this.below.size;
  }

  get readOnly(): boolean {
    return this.below.readOnly;
  }

  identity(): VolumeIdentity {
    return this.below.identity();
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    await this.gate('read');
    return this.below.read(offset, length, into);
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.gate('write');
    return this.below.write(offset, data, options);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    await this.gate('write');
    return this.below.writeZeroes(offset, length, options);
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    await this.gate('write');
    return this.below.trim(offset, length, options);
  }

  async flush(): Promise<void> {
    await this.gate('write');
    return this.below.flush();
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    await this.gate('read');
    return this.below.blockStatus(offset, length);
  }

  /** Identification: answered unless the port is down or hung (standby and reservations do not stop it). */
  async inquiry(): Promise<VolumeIdentity> {
    await this.gate('inquiry');
    return this.below.identity();
  }

  private async gate(cls: RequestClass): Promise<void> {
    const sw = this.faults;
    const d = sw.decide(cls);
    switch (d.action) {
      case 'down':
        sw.noteRefused();
        throw new LunrigError('UNREACHABLE', `port ${sw.name}: link down`, { port: sw.name });
      case 'hang':
        return sw.hold();
      case 'standby':
        sw.noteRefused();
        throw new LunrigError('NOT_READY', `port ${sw.name}: logical unit not accessible, target port in standby state`, { port: sw.name });
      case 'error':
        if (d.delayMs > 0) await sw.clock.sleep(d.delayMs);
        sw.noteInjectedError();
        throw new LunrigError(d.code, `port ${sw.name}: injected ${d.code}`, { port: sw.name, injected: true });
      case 'pass':
        if (d.delayMs > 0) await sw.clock.sleep(d.delayMs);
        return;
    }
  }
}
