/** The CRIT decision table (spec §3.6, Table 1), exhaustively. */
import { describe, expect, it } from 'vitest';
import { critDecision } from '../../../src/copy/pprc/index.js';

describe('PPRC CRIT table', () => {
  it('PP-21 PP-22 PP-23 every combination of Critical Volume, Critical Heavy and fault kind', () => {
    const rows: Array<[boolean, boolean, boolean, boolean, boolean]> = [
      // CV,   CH,    pathsLost, primary inhibited, secondary inhibited
      [false, false, false, false, false],
      [false, false, true, false, false],
      [false, true, false, false, false],
      [false, true, true, false, false],
      [true, false, false, false, false],
      [true, false, true, true, false],
      [true, true, false, true, true],
      [true, true, true, true, true],
    ];
    for (const [criticalVolume, criticalHeavy, pathsLost, primaryInhibited, secondaryInhibited] of rows) {
      expect(critDecision({ criticalVolume, criticalHeavy, pathsLost }), JSON.stringify({ criticalVolume, criticalHeavy, pathsLost })).toEqual({ primaryInhibited, secondaryInhibited });
    }
  });
});
