/**
 * A deleted LUN leaves no host mapping and no reservation behind. Both are
 * keyed by the LU's unique id, so they never applied to a LUN created later
 * under the same name; without this they stayed in hosts.json,
 * reservations.json and the listings for good.
 */
import type { Pool } from '../store/pool.js';
import type { LunInfo } from '../store/lun.js';
import type { HostRegistry } from './host-registry.js';
import type { ReservationTable } from './reservation-table.js';

export interface DeletedLunFollower {
  /** Stop following. */
  stop(): void;
  /** Resolves once the saves of every deletion seen so far are done. */
  drained(): Promise<void>;
}

/** Follow the pool's LUN deletions. */
export function forgetDeletedLuns(pool: Pick<Pool, 'on' | 'off'>, access: { hosts: HostRegistry; reservations: ReservationTable }): DeletedLunFollower {
  let last: Promise<unknown> = Promise.resolve();
  const onDeleted = (info: LunInfo): void => {
    // A failed save leaves the entry in its file: harmless (it names a unique id no LUN has any more).
    last = Promise.all([last, access.hosts.forgetLun(info.name, info.uniqueId).catch(() => undefined), access.reservations.drop(info.uniqueId).catch(() => undefined)]);
  };
  pool.on('lun-deleted', onDeleted);
  return {
    stop: () => pool.off('lun-deleted', onDeleted),
    drained: async () => {
      await last;
    },
  };
}
