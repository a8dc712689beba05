/**
 * The CRIT / Critical Volume / Critical Heavy decision (spec §3.6, Table 1 and
 * the lunrig decision table): after a failure to update the secondary the pair
 * always suspends; this says whether later primary writes are refused
 * (write-inhibited) and whether the secondary is write-inhibited too.
 *
 *   CV  CH  fault                       primary writes   secondary
 *   off any any                         accepted, recorded
 *   on  off secondary device, links up  accepted, recorded
 *   on  off all paths lost              refused
 *   on  on  any                         refused          write-inhibited
 */
export interface CritInput {
  criticalVolume: boolean;
  /** Critical Heavy in effect on the primary's LSS (changes wait for a power cycle, PP-28). */
  criticalHeavy: boolean;
  /** No link of the pair's path is up (or the ack timed out with none left). */
  pathsLost: boolean;
}

export interface CritDecision {
  primaryInhibited: boolean;
  secondaryInhibited: boolean;
}

export function critDecision({ criticalVolume, criticalHeavy, pathsLost }: CritInput): CritDecision {
  if (!criticalVolume) return { primaryInhibited: false, secondaryInhibited: false };
  if (criticalHeavy) return { primaryInhibited: true, secondaryInhibited: true };
  return { primaryInhibited: pathsLost, secondaryInhibited: false };
}
