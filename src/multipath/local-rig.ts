/**
 * An in-process multipath rig: one LU exported on N in-process target ports
 * (each with its own fault switch) and a multipath device over them, with
 * the device's events recorded. For simulators that want a faulty multipath
 * LU without sockets, and for tests. Over NBD, build the same from
 * TargetPort.start() and NbdPathVolume instead.
 */
import { LunrigError } from '../errors.js';
import { ReservationGate } from '../hosts/reservation-gate.js';
import type { ReservationTable } from '../hosts/reservation-table.js';
import type { Clock } from '../util/clock.js';
import type { Volume } from '../volume/volume.js';
import type { MultipathEvent } from './events.js';
import type { FaultSwitch } from './fault-switch.js';
import { MultipathDevice, type MultipathDeviceOptions } from './multipath-device.js';
import type { PathSpec } from './path.js';
import { TargetPort } from './target-port.js';

export interface LocalRigPath extends Omit<PathSpec, 'volume'> {
  /** The port the path goes through (default: a port of the path's name). Paths may share a port. */
  port?: string;
}

export interface LocalRigOptions {
  lun: Volume;
  /** Export name on every port (default: the LU's identity name). */
  lunName?: string;
  /** Path names, or specs; ports are created as named. */
  paths: readonly (string | LocalRigPath)[];
  config?: MultipathDeviceOptions['config'];
  clock?: Clock;
  /** Random source for every port's switch (seed it for replayable rates and distributions). */
  random?: () => number;
  name?: string;
  /** Reservations: every path is the I_T nexus (host, its port) on this table, and can send reservation commands. */
  reservations?: { table: ReservationTable; host: string };
}

export interface LocalRig {
  device: MultipathDevice;
  ports: ReadonlyMap<string, TargetPort>;
  /** Every event the device emitted, in order. */
  events: MultipathEvent[];
  /** The fault switch of a port. */
  faults(port: string): FaultSwitch;
}

export function createLocalRig(o: LocalRigOptions): LocalRig {
  const lunName = o.lunName ?? o.lun.identity().name;
  const ports = new Map<string, TargetPort>();
  const specs = o.paths.map((p) => (typeof p === 'string' ? { name: p } : p));
  const paths: PathSpec[] = specs.map(({ port: portName, ...spec }) => {
    const name = portName ?? spec.name;
    let port = ports.get(name);
    if (!port) {
      port = new TargetPort({ name, luns: [{ name: lunName, volume: o.lun }], clock: o.clock, random: o.random });
      ports.set(name, port);
    }
    const below = port.volume(lunName);
    return { ...spec, volume: o.reservations ? new ReservationGate(below, o.reservations.table, { host: o.reservations.host, port: name }) : below };
  });
  const device = new MultipathDevice({ name: o.name, paths, config: o.config, clock: o.clock });
  const events: MultipathEvent[] = [];
  device.on('event', (e) => events.push(e));
  return {
    device,
    ports,
    events,
    faults(port: string): FaultSwitch {
      const p = ports.get(port);
      if (!p) throw new LunrigError('INVALID_ARGUMENT', `no port '${port}' in this rig`);
      return p.faults;
    },
  };
}
