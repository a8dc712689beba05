/**
 * The ESS CLI's output strings, verbatim in form (spec §2.6, §4.4, CP-01, §7
 * item 13): `rsQuery` prints per volume
 *   Volume 20014744 found on 14744:12 as volume number 000
 *   State=simplex, status=not_suspended, FlashCopy_state=source, Size=20.0_GB
 * and the e-mailed summary writes one line per volume
 *   000 00012019 nolabel simplex, notFlashCopy, not_suspended
 * State and status are PPRC's (simplex / not_suspended until PPRC says otherwise).
 */
import { formatLss } from '../../store/identity.js';
import { GiB } from '../../util/size.js';

export type FlashCopyRole = 'source' | 'target' | 'none';

export interface EssVolume {
  volumeId: string;
  serial: string;
  lss: number;
  volumeNumber: number;
  size: number;
}

export interface PprcView {
  state: 'simplex' | 'source' | 'target';
  suspended: boolean;
}

export const SIMPLEX: PprcView = Object.freeze({ state: 'simplex', suspended: false });

/** "GB" is 1 073 741 824 bytes (the Redbook's glossary); one decimal, as in `Size=20.0_GB`. */
export function essSize(bytes: number): string {
  return `${(bytes / GiB).toFixed(1)}_GB`;
}

function volumeNumber(n: number): string {
  return n.toString(16).toUpperCase().padStart(3, '0');
}

/** The two lines rsQuery prints for a volume. */
export function rsQueryLines(v: EssVolume, fc: FlashCopyRole, pprc: PprcView = SIMPLEX): [string, string] {
  return [
    `Volume ${v.volumeId} found on ${v.serial}:${formatLss(v.lss)} as volume number ${volumeNumber(v.volumeNumber)}`,
    `State=${pprc.state}, status=${pprc.suspended ? 'suspended' : 'not_suspended'}, FlashCopy_state=${fc}, Size=${essSize(v.size)}`,
  ];
}

/** The configuration summary line; the document shows only `notFlashCopy`, the other two values are lunrig's ([E]). */
export function summaryLine(v: EssVolume, fc: FlashCopyRole, pprc: PprcView = SIMPLEX, label = 'nolabel'): string {
  const fcWord = fc === 'none' ? 'notFlashCopy' : fc === 'source' ? 'FlashCopySource' : 'FlashCopyTarget';
  return `${volumeNumber(v.volumeNumber)} ${v.volumeId} ${label} ${pprc.state}, ${fcWord}, ${pprc.suspended ? 'suspended' : 'not_suspended'}`;
}
