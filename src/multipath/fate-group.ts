/**
 * A fate group (spec §1.1): everything that shares one component (an HBA, a
 * switch, a controller, a VIOS partition), so one injected fault hits all
 * its ports in the same virtual instant (MP-20: "VIOS1 down").
 */
import { FaultSwitch, type Fault, type FaultTarget } from './fault-switch.js';

export class FateGroup implements FaultTarget {
  private readonly members: FaultSwitch[] = [];

  constructor(
    readonly name: string,
    members: Iterable<FaultSwitch | { faults: FaultSwitch }> = [],
  ) {
    for (const m of members) this.join(m);
  }

  /** Add a port (or its switch) to the group. */
  join(member: FaultSwitch | { faults: FaultSwitch }): this {
    const sw = member instanceof FaultSwitch ? member : member.faults;
    if (!this.members.includes(sw)) this.members.push(sw);
    return this;
  }

  get switches(): readonly FaultSwitch[] {
    return this.members;
  }

  /** Set the same faults on every member, synchronously, so all change at one clock reading. */
  set(...faults: Fault[]): void {
    for (const m of this.members) m.set(...faults);
  }

  clear(): void {
    for (const m of this.members) m.clear();
  }
}
