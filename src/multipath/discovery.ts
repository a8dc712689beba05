/**
 * Device discovery: candidate paths become one multipath device per LU
 * identity (spec §1.1: paths are grouped only if they report the same
 * identity; MP-42). lunrig's identity is the LU's uniqueId (UDID / WWID).
 */
import type { VolumeIdentity } from '../volume/volume.js';
import type { PathSpec } from './path.js';

export interface DiscoveredDevice {
  identity: VolumeIdentity;
  /** In the order they were found. */
  paths: PathSpec[];
}

export function discoverDevices(paths: Iterable<PathSpec>): DiscoveredDevice[] {
  const byId = new Map<string, DiscoveredDevice>();
  for (const spec of paths) {
    const identity = spec.volume.identity();
    const found = byId.get(identity.uniqueId);
    if (found) found.paths.push(spec);
    else byId.set(identity.uniqueId, { identity, paths: [spec] });
  }
  return [...byId.values()];
}
