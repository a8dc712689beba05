/**
 * The fault-injection layer of one LUN behind one port: every request asks
 * the port's FaultSwitch first (down, hang, standby, latency, error), then
 * goes to the Volume below. The same layer serves an in-process path and a
 * TargetPort's NBD export, so a fault behaves alike both ways. Like nbdkit's
 * delay and error filters, one operation each, in the usual order.
 */
import { LunrigError } from '../errors.js';
import { AdmissionLayer } from '../volume/admission-layer.js';
import type { Volume, VolumeIdentity } from '../volume/volume.js';
import type { FaultSwitch, RequestClass } from './fault-switch.js';
import type { PathTransport } from './transport.js';

export class FaultyVolume extends AdmissionLayer implements PathTransport {
  constructor(
    below: Volume,
    readonly faults: FaultSwitch,
  ) {
    super(below);
  }

  /** Identification: answered unless the port is down or hung (standby and reservations do not stop it). */
  async inquiry(): Promise<VolumeIdentity> {
    await this.gate('inquiry');
    return this.below.identity();
  }

  protected override admit(kind: 'read' | 'write'): Promise<void> {
    return this.gate(kind);
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
