/**
 * How background copy moves grains from source to target. The engine holds
 * the grains' locks around `copy`, so a copier needs no ordering of its own.
 */

export interface GrainCopier {
  /** True when `copy` resolves only once the copies are durable on the target (no flush needed before the bits). */
  readonly durable: boolean;
  /** Copy the grains (distinct, ascending); resolves with the bytes copied. */
  copy(grains: readonly number[]): Promise<number>;
}

/** Through the Volumes below the layers, on the caller's thread (any Volume: MemoryVolume rigs, tests). */
export class VolumeGrainCopier implements GrainCopier {
  readonly durable = false;

  constructor(private readonly copyGrain: (grain: number) => Promise<number>) {}

  async copy(grains: readonly number[]): Promise<number> {
    const sizes = await Promise.all(grains.map((g) => this.copyGrain(g)));
    return sizes.reduce((a, b) => a + b, 0);
  }
}
