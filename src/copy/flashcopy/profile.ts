/**
 * Which establish rules apply. The default is the ESS's (spec §2.2): same
 * LSS, target at least as large as the source, one relationship per volume.
 * A rig may relax those three explicitly, per manager or per establish; a
 * relationship established under relaxed rules says so in every query.
 */
import { LunrigError } from '../../errors.js';

export const RELAXATIONS = ['cross-lss', 'smaller-target', 'multiple-targets'] as const;

/**
 * - cross-lss: source and target (and a consistency group's pairs) may sit in different LSSs (F-P1);
 * - smaller-target: the target may be smaller; only its size is copied (F-P2);
 * - multiple-targets: a source may have several targets at once (F-P3). A volume
 *   is still never a target twice, nor a source and a target at once (no cascades).
 */
export type Relaxation = (typeof RELAXATIONS)[number];

export interface FlashCopyProfile {
  /** Rules relaxed for every establish; none in the strict ESS profile. */
  relax: readonly Relaxation[];
  /** F-P6: the FlashCopy feature is licensed and enabled. */
  licensed: boolean;
  /**
   * F-P8: refuse a target the pool's filesystem could not fill. Off by
   * default: lunrig LUNs are sparse by design, and the check would refuse
   * large rigs on small disks ([E] decision).
   */
  checkTargetSpace: boolean;
  /** F-P10 / CB-07 permissive flag: allow combinations with PPRC the document does not describe. */
  allowUnsupportedCombinations: boolean;
}

export const STRICT_PROFILE: FlashCopyProfile = Object.freeze({ relax: [], licensed: true, checkTargetSpace: false, allowUnsupportedCombinations: false });
export const RELAXED_PROFILE: FlashCopyProfile = Object.freeze({ ...STRICT_PROFILE, relax: [...RELAXATIONS] });

export function resolveProfile(input: 'strict' | 'relaxed' | Partial<FlashCopyProfile> | undefined): FlashCopyProfile {
  if (input === undefined || input === 'strict') return STRICT_PROFILE;
  if (input === 'relaxed') return RELAXED_PROFILE;
  return { ...STRICT_PROFILE, ...input, relax: parseRelaxations(input.relax ?? []) };
}

export function parseRelaxations(values: readonly string[]): Relaxation[] {
  for (const v of values) {
    if (!(RELAXATIONS as readonly string[]).includes(v)) {
      throw new LunrigError('INVALID_ARGUMENT', `unknown FlashCopy relaxation '${v}' (known: ${RELAXATIONS.join(', ')})`, { relaxation: v });
    }
  }
  return RELAXATIONS.filter((r) => values.includes(r));
}

/** 'strict' when no rule is relaxed. */
export function profileName(relax: readonly Relaxation[]): 'strict' | 'relaxed' {
  return relax.length === 0 ? 'strict' : 'relaxed';
}
