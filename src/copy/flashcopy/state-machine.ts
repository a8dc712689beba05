/**
 * The FlashCopy relationship state machine (spec §2.0, FX1..FX8). A
 * relationship that has ended no longer exists: both volumes then report
 * FlashCopy_state=none, and that is the 'none' here.
 *
 *   none ──establish──► establishing ──bitmap created (T0)──► copying (COPY) | copy-on-write (NOCOPY)
 *   copying ──last grain copied──► terminating ──► none (FX3), or copied (incremental: stays, recording changes)
 *   copied ──refresh──► copying
 *   any active state ──withdraw──► terminating ──► none (FX4)
 *   copy-on-write stays copy-on-write even once every grain is copied (FX5)
 */
import { LunrigError } from '../../errors.js';

export type FlashCopyState = 'none' | 'establishing' | 'copying' | 'copy-on-write' | 'copied' | 'terminating';

export type FlashCopyEvent = 'establish' | 'established-copy' | 'established-nocopy' | 'copy-complete' | 'copy-complete-persistent' | 'refresh' | 'withdraw' | 'ended' | 'failed';

const TRANSITIONS: Readonly<Record<FlashCopyState, Partial<Record<FlashCopyEvent, FlashCopyState>>>> = {
  none: { establish: 'establishing' },
  establishing: { 'established-copy': 'copying', 'established-nocopy': 'copy-on-write', failed: 'none' },
  copying: { 'copy-complete': 'terminating', 'copy-complete-persistent': 'copied', withdraw: 'terminating', refresh: 'copying' },
  'copy-on-write': { withdraw: 'terminating' },
  copied: { refresh: 'copying', withdraw: 'terminating' },
  terminating: { ended: 'none' },
};

/** The state after `event`; INTERNAL when the machine has no such edge (a lunrig bug, not a user error). */
export function transition(from: FlashCopyState, event: FlashCopyEvent): FlashCopyState {
  const to = TRANSITIONS[from][event];
  if (to === undefined) throw new LunrigError('INTERNAL', `FlashCopy relationship in state ${from} cannot take event ${event}`, { from, event });
  return to;
}

/** States in which the relationship binds its volumes (F-P3) and its layers intercept I/O. */
export function isActive(state: FlashCopyState): boolean {
  return state !== 'none';
}
