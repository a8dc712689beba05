/**
 * The establish preconditions F-P1..F-P10 (spec §2.2) as checks on plain
 * facts, so each is testable without volumes. Every refusal is a typed error
 * naming its rule; callers check before changing anything, so a refusal
 * changes no state.
 */
import { LunrigError, type ErrorCode } from '../../errors.js';
import { FIRST_LSS, LAST_LSS, formatLss } from '../../store/identity.js';
import type { FlashCopyProfile, Relaxation } from './profile.js';

/** What the rules need to know about a volume. */
export interface VolumeFacts {
  name: string;
  lss: number;
  size: number;
  readOnly: boolean;
  /** In use by a host (open session flagged in-use, or a reservation): F-P5. */
  online: boolean;
  /** Its PPRC role, when it has one: F-P10. */
  pprcRole?: 'primary' | 'secondary';
}

/** A relationship that exists (in any state, `establishing` included). */
export interface PairRef {
  source: string;
  target: string;
}

export interface EstablishRules {
  profile: FlashCopyProfile;
  /** The profile's relaxations plus the establish's own. */
  relax: readonly Relaxation[];
  permitIfTargetOnline: boolean;
  /** Free bytes where the target's data goes (F-P8; only read when the profile checks space). */
  freeBytes?: number;
}

/** Open-systems (fixed-block) LSSs are 0x10..0x1f; lower ones are CKD (F-P4, FC-21). */
export function isFixedBlockLss(lss: number): boolean {
  return lss >= FIRST_LSS && lss <= LAST_LSS;
}

function refuse(code: ErrorCode, rule: string, message: string, details: Record<string, unknown>): never {
  throw new LunrigError(code, `${message} (${rule})`, { rule, ...details });
}

export function checkEstablish(source: VolumeFacts, target: VolumeFacts, existing: readonly PairRef[], rules: EstablishRules): void {
  const names = { source: source.name, target: target.name };
  const relaxed = (r: Relaxation) => rules.relax.includes(r);
  if (source.name === target.name) refuse('FC_SAME_VOLUME', 'F-P7', `source and target are the same volume '${source.name}'`, names);
  if (!rules.profile.licensed) refuse('FC_NOT_LICENSED', 'F-P6', 'the FlashCopy feature is not licensed on this storage server', names);
  for (const v of [source, target]) {
    if (!isFixedBlockLss(v.lss)) refuse('FC_NOT_FIXED_BLOCK', 'F-P4', `volume '${v.name}' is in LSS ${formatLss(v.lss)}, not an open-systems (FB) LSS`, { ...names, lss: v.lss });
  }
  if (source.lss !== target.lss && !relaxed('cross-lss')) {
    refuse('FC_DIFFERENT_LSS', 'F-P1', `source '${source.name}' is in LSS ${formatLss(source.lss)}, target '${target.name}' in LSS ${formatLss(target.lss)}`, {
      ...names,
      sourceLss: source.lss,
      targetLss: target.lss,
    });
  }
  if (target.size < source.size && !relaxed('smaller-target')) {
    refuse('FC_TARGET_TOO_SMALL', 'F-P2', `target '${target.name}' (${target.size} bytes) is smaller than source '${source.name}' (${source.size} bytes)`, {
      ...names,
      sourceSize: source.size,
      targetSize: target.size,
    });
  }
  checkOneRelationship(source.name, target.name, existing, relaxed('multiple-targets'));
  if (!rules.profile.allowUnsupportedCombinations) {
    if (target.pprcRole) refuse('FC_UNSUPPORTED_COMBINATION', 'F-P10', `target '${target.name}' is a PPRC ${target.pprcRole}`, { ...names, pprcRole: target.pprcRole });
    if (source.pprcRole === 'primary') refuse('FC_UNSUPPORTED_COMBINATION', 'F-P10', `source '${source.name}' is a PPRC primary`, { ...names, pprcRole: source.pprcRole });
  }
  if (target.online && !rules.permitIfTargetOnline) refuse('FC_TARGET_ONLINE', 'F-P5', `target '${target.name}' is online (in use by a host); permit it with permitIfTargetOnline`, names);
  const needed = Math.min(source.size, target.size);
  if (rules.profile.checkTargetSpace && rules.freeBytes !== undefined && rules.freeBytes < needed) {
    refuse('FC_TARGET_NO_SPACE', 'F-P8', `target '${target.name}' needs ${needed} bytes of real capacity, ${rules.freeBytes} are free`, { ...names, needed, free: rules.freeBytes });
  }
  // Not an ESS rule: FlashCopy writes the target, and a read-only LUN refuses every write.
  if (target.readOnly) throw new LunrigError('READ_ONLY', `target '${target.name}' is read-only`, names);
}

/**
 * F-P3: a volume is in one relationship at a time (source twice, target twice,
 * source and target, cascades). multiple-targets lets a source have several
 * targets; the rest stays.
 */
function checkOneRelationship(source: string, target: string, existing: readonly PairRef[], multipleTargets: boolean): void {
  for (const pair of existing) {
    const busy = (name: string, role: string) =>
      refuse('FC_VOLUME_IN_RELATIONSHIP', 'F-P3', `volume '${name}' is already the ${role} of FlashCopy ${pair.source} -> ${pair.target}`, {
        source,
        target,
        volume: name,
        existingSource: pair.source,
        existingTarget: pair.target,
      });
    if (pair.source === target) busy(target, 'source');
    if (pair.target === target) busy(target, 'target');
    if (pair.target === source) busy(source, 'target');
    if (pair.source === source && !multipleTargets) busy(source, 'source');
  }
}

/**
 * A consistency group's pairs: each pair as an establish of its own, against
 * the existing relationships and the group's earlier pairs; in the strict
 * profile all sources share one LSS and all targets another (spec §2.8:
 * multiple selection is limited to one LSS per side).
 */
export function checkGroup(pairs: ReadonlyArray<{ source: VolumeFacts; target: VolumeFacts }>, existing: readonly PairRef[], rules: EstablishRules): void {
  if (pairs.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a consistency group needs at least one pair');
  const first = pairs[0]!;
  const soFar = [...existing];
  for (const { source, target } of pairs) {
    if (!rules.relax.includes('cross-lss') && (source.lss !== first.source.lss || target.lss !== first.target.lss)) {
      refuse('FC_DIFFERENT_LSS', 'F-P1', `pair ${source.name} -> ${target.name} is not in the LSSs of the group's first pair`, { source: source.name, target: target.name });
    }
    checkEstablish(source, target, soFar, rules);
    soFar.push({ source: source.name, target: target.name });
  }
}
