/**
 * Copy-on-write grain copies inside the I/O workers. When the Volumes right
 * below both FlashCopy layers are plain LUNs served by one WorkerIoEngine, a
 * grain copy is one OP_COPY request (WorkerLunBackend.copyFrom): the worker
 * copies the source file range to the target file with copy_file_range(2)
 * (or pread/pwrite through its own buffer), holes stay holes, and no grain
 * crosses to the main thread. Anything else (layers in between, FsIoEngine,
 * MemoryVolume rigs, two engines) returns undefined: CowEngine then reads
 * the grain through the source Volume and writes it through the target's.
 *
 * Like the Volume path it works on the LUNs as the layers below FlashCopy see
 * them: with nothing in between, the LUN is that Volume.
 */
import type { LunBackendSpec } from '../../io/backend.js';
import { WorkerIoEngine } from '../../io/worker-engine.js';
import { Lun } from '../../store/lun.js';
import type { Volume } from '../../volume/volume.js';

export interface GrainMover {
  /** Copy [offset, offset + length) from source to target; with `fua`, durable on the target when it resolves. */
  copy(offset: number, length: number, fua: boolean): Promise<void>;
}

export function workerGrainMover(sourceBelow: Volume, targetBelow: Volume, specs: () => { source: LunBackendSpec; target: LunBackendSpec }): GrainMover | undefined {
  if (!(sourceBelow instanceof Lun) || !(targetBelow instanceof Lun)) return undefined;
  const arena = sourceBelow.fastPath()?.arena;
  if (!arena || targetBelow.fastPath()?.arena !== arena) return undefined;
  const engine = WorkerIoEngine.ofArena(arena);
  if (!engine) return undefined;
  const { source: s, target: t } = specs();
  const source = engine.backendFor(s.segments);
  const target = engine.backendFor(t.segments);
  if (!source || !target || source === target) return undefined;
  return { copy: (offset, length, fua) => target.copyFrom(source, offset, offset, length, fua) };
}
