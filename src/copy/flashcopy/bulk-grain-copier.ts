/**
 * Background copy of pool LUNs on piscina worker threads (src/io/bulk): one
 * task per batch of grains reads the source's segment files and writes the
 * target's, keeping source holes as holes. The task does not fdatasync: the
 * committer's target flush (fdatasync of the same files, through the LUN)
 * makes the copies durable before their bits, once for every batch and
 * copy-on-write that commits together.
 *
 * It works on the files, under whatever layers sit below FlashCopy (fault
 * injection does not see background copy). That is right only while the
 * source's files hold its logical content, which holds as long as a volume
 * cannot be a FlashCopy target and source at once (no cascading, F-P3).
 */
import type { LunBackendSpec } from '../../io/backend.js';
import type { BulkJobs } from '../../io/bulk/bulk-jobs.js';
import type { GrainCopier } from './grain-copier.js';

export interface BulkCopyEnds {
  /** Current file layouts (a LUN may grow while the relationship lasts). */
  source(): LunBackendSpec;
  target(): LunBackendSpec;
}

export class BulkGrainCopier implements GrainCopier {
  readonly durable = false;

  constructor(
    private readonly bulk: BulkJobs,
    private readonly ends: BulkCopyEnds,
    private readonly grainSize: number,
    /** Bytes the relationship covers: nothing past it is copied, however large the volumes grew. */
    private readonly size: number,
  ) {}

  async copy(grains: readonly number[]): Promise<number> {
    const result = await this.bulk.copyGrains(clip(this.ends.source(), this.size), clip(this.ends.target(), this.size), grains, this.grainSize, { sync: false });
    return result.bytesCopied + result.bytesPunched;
  }
}

function clip(spec: LunBackendSpec, size: number): LunBackendSpec {
  return { ...spec, size: Math.min(spec.size, size) };
}
