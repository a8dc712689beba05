/**
 * The part of the PPRC manager (src/copy/pprc/manager.ts, the core) that the
 * remote secondary, the control API, the CLI and `lunrig serve` use, named
 * so those views depend on what they call and nothing else. The HTTP routes
 * map onto it 1:1.
 */
import type { PprcManager } from '../manager.js';

export type PprcCoreApi = Pick<
  PprcManager,
  | 'serial'
  | 'addEss'
  | 'essList'
  | 'asSecondary'
  | 'addLink'
  | 'removeLink'
  | 'setLinkFault'
  | 'links'
  | 'establishPath'
  | 'removePath'
  | 'paths'
  | 'establish'
  | 'suspend'
  | 'terminate'
  | 'freeze'
  | 'release'
  | 'setLss'
  | 'lssSettings'
  | 'powerCycle'
  | 'query'
  | 'list'
  | 'waitForCopy'
  | 'audit'
  | 'close'
>;
