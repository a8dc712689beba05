/**
 * Canonical path states (spec/multipath.md §1.2) and what each product calls
 * them. The multipath layer reasons only in canonical states; a profile's
 * names are for display (lspath / dlnkmgr view -path / multipath -ll).
 */

export const PATH_STATES = ['online', 'online_degraded', 'standby', 'failed', 'quarantined', 'admin_offline', 'absent'] as const;
export type PathState = (typeof PATH_STATES)[number];

export const PROFILE_NAMES = ['aix', 'hdlm', 'dm'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/**
 * Per-product names. Where a product has no such state the nearest one is
 * shown (AIX has no Online(E); HDLM shows a quarantined path as Offline(E),
 * flagged intermittent elsewhere). dm shows "<kernel state> <checker state>".
 */
export const STATE_NAMES: Readonly<Record<ProfileName, Readonly<Record<PathState, string>>>> = {
  aix: {
    online: 'Enabled',
    online_degraded: 'Enabled',
    standby: 'Enabled',
    failed: 'Failed',
    quarantined: 'Failed',
    admin_offline: 'Disabled',
    absent: 'Missing',
  },
  hdlm: {
    online: 'Online',
    online_degraded: 'Online(E)',
    standby: 'Online(S)',
    failed: 'Offline(E)',
    quarantined: 'Offline(E)',
    admin_offline: 'Offline(C)',
    absent: 'Offline(E)',
  },
  dm: {
    online: 'active ready',
    online_degraded: 'active ready',
    standby: 'active ghost',
    failed: 'failed faulty',
    quarantined: 'failed marginal',
    admin_offline: 'failed ready',
    absent: 'removed',
  },
};

export function stateName(profile: ProfileName, state: PathState): string {
  return STATE_NAMES[profile][state];
}

/** States a selector may send I/O to (standby only as a last resort, see path-groups.ts). */
export function carriesIo(state: PathState): boolean {
  return state === 'online' || state === 'online_degraded' || state === 'standby';
}

/**
 * Legal moves. Leaving admin_offline takes an admin; leaving quarantined takes
 * an admin or the policy's release timer: the device enforces who may ask,
 * this table only what is possible at all.
 */
const TRANSITIONS: Readonly<Record<PathState, readonly PathState[]>> = {
  online: ['online_degraded', 'standby', 'failed', 'quarantined', 'admin_offline', 'absent'],
  online_degraded: ['online', 'standby', 'failed', 'quarantined', 'admin_offline', 'absent'],
  standby: ['online', 'online_degraded', 'failed', 'quarantined', 'admin_offline', 'absent'],
  failed: ['online', 'online_degraded', 'standby', 'quarantined', 'admin_offline', 'absent'],
  quarantined: ['online', 'failed', 'admin_offline', 'absent'],
  admin_offline: ['online', 'failed', 'absent'],
  absent: ['online', 'failed', 'admin_offline'],
};

export function canTransition(from: PathState, to: PathState): boolean {
  return TRANSITIONS[from].includes(to);
}
